//! The watchdog: what the crate does not report by itself.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use jiff::SignedDuration;
use wagate_app::connector::ConnectorEvent;
use wagate_domain::ids::LineId;

use super::{lock, Inner, LineConn};

/// Every [`Options::watch_every`]: reports linked lines that never came up as dropped, and
/// stops pairing clients nobody looks at any more.
pub(super) async fn watch(inner: Weak<Inner>) {
    let every = match inner.upgrade() {
        Some(i) => i.options.watch_every,
        None => return,
    };
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let now = inner.wall.now();
        let grace = SignedDuration::try_from(inner.options.connect_grace).unwrap_or_default();
        let idle = SignedDuration::try_from(inner.options.pairing_idle).unwrap_or_default();
        let conns: Vec<(LineId, Arc<LineConn>)> = lock(&inner.lines)
            .iter()
            .map(|(l, c)| (l.clone(), c.clone()))
            .collect();
        for (line, conn) in conns {
            let pairing = conn.link.is_some() && !lock(&conn.machine).linked;
            if pairing && now.duration_since(*lock(&conn.last_look)) > idle {
                inner.stop(&line).await;
                continue;
            }
            if !conn.up.load(Ordering::SeqCst) && now.duration_since(conn.started) > grace {
                let steps = {
                    let mut m = lock(&conn.machine);
                    if m.linked && !m.down_reported && m.blocked.is_none() {
                        m.down_reported = true;
                        vec![ConnectorEvent::Dropped { line: line.clone() }]
                    } else {
                        Vec::new()
                    }
                };
                for event in steps {
                    tracing::warn!(line = %line, "WhatsApp could not be reached for this line");
                    inner.deliver(event).await;
                }
            }
        }
    }
}
