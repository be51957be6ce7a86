//! `otlp-sink`: an OTLP collector that counts spans and keeps none, for the load comparison with
//! tracing on (`benches/load/run.sh` with `DYEGATE_GATEWAY_EXTRA` pointing dyegate at it).
//!
//! ```text
//! cargo run --release -p dyegate-suite --bin otlp-sink -- --listen 127.0.0.1:4317 --protocol grpc
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use dyegate_suite::{OtlpProtocol, OtlpReceiver};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Protocol {
    Grpc,
    Http,
}

/// Command line of `otlp-sink`.
#[derive(Debug, Parser)]
#[command(about = "OTLP trace collector that only counts what it receives")]
struct Args {
    #[arg(long, default_value = "127.0.0.1:4317")]
    listen: SocketAddr,
    #[arg(long, value_enum, default_value = "grpc")]
    protocol: Protocol,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let protocol = match args.protocol {
        Protocol::Grpc => OtlpProtocol::Grpc,
        Protocol::Http => OtlpProtocol::Http,
    };
    let sink = OtlpReceiver::sink(args.listen, protocol)?;
    eprintln!("otlp-sink: listening on {} ({protocol:?})", sink.addr());
    let mut last = 0;
    loop {
        // time is tested: the sink prints its span count every 5 s (a helper binary, not a test).
        std::thread::sleep(Duration::from_secs(5));
        let spans = sink.span_count();
        if spans != last {
            eprintln!("otlp-sink: {spans} spans in {} exports", sink.exports());
            last = spans;
        }
    }
}
