//! A copy's lane: services behind the shadow stay in the shadow's lane. The copy carries the
//! route's dye tag that names the shadow group (`dye.tags`), in the dye header and as the
//! `baggage` member the gateway writes for the tag; when no tag names the shadow group (a
//! stable group, usually), the copy goes in the base lane: no tag header, no tag member. The
//! rest of the request's baggage is kept.

use super::send::Copy;
use dyegate_plugins::trace_context::{set_baggage_member, BaggageEdit, BAGGAGE};
use http::HeaderValue;

impl Copy {
    /// Puts the copy in its shadow group's lane (see the module); `baggage_key`: the member
    /// the gateway writes the tag as (`tracing.baggage_key`).
    pub fn into_lane(&mut self, baggage_key: &str) {
        let Some(mirror) = self.entry.mirror() else {
            return;
        };
        let dye = &self.entry.route.dye;
        let tag = (dye.tags.iter())
            .find(|(_, g)| *g == mirror.group)
            .map(|(t, _)| t.as_ref());
        let headers = &mut self.request.headers;
        match tag.and_then(|t| HeaderValue::from_str(t).ok()) {
            Some(value) => {
                headers.insert(dye.header.clone(), value);
            }
            None => {
                headers.remove(&dye.header);
            }
        }
        let edit = set_baggage_member(
            headers.get_all(BAGGAGE).iter().map(|v| v.as_bytes()),
            baggage_key,
            tag,
        );
        match edit {
            BaggageEdit::Unchanged => {}
            BaggageEdit::Remove => {
                headers.remove(BAGGAGE);
            }
            BaggageEdit::Set(value) => {
                if let Ok(v) = HeaderValue::from_str(&value) {
                    headers.insert(BAGGAGE, v);
                }
            }
        }
    }
}
