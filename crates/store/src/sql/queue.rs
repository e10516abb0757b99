//! The waiting line shared by the two group commits (`group.rs`, `ordered.rs`): writers push
//! their request, the first one into an idle queue starts the flusher, and the flusher takes
//! what is waiting, a group at a time, until nothing is left.

use std::sync::Mutex;

/// Requests waiting for a flusher, and whether one is running.
pub(crate) struct FlushQueue<T> {
    waiting: Mutex<Waiting<T>>,
}

struct Waiting<T> {
    requests: Vec<T>,
    flushing: bool,
}

impl<T> Default for FlushQueue<T> {
    fn default() -> Self {
        FlushQueue {
            waiting: Mutex::new(Waiting {
                requests: Vec::new(),
                flushing: false,
            }),
        }
    }
}

impl<T> FlushQueue<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting<T>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `request` behind every request queued before it; `true` when no flusher is
    /// running, so the caller must start one.
    pub(crate) fn push(&self, request: T) -> bool {
        let mut w = self.lock();
        w.requests.push(request);
        !std::mem::replace(&mut w.flushing, true)
    }

    /// The flusher's next group: the oldest `most` requests waiting, in order. `None` when
    /// nothing waits, and the flusher stops then: the next push starts a new one.
    pub(crate) fn take(&self, most: usize) -> Option<Vec<T>> {
        let mut w = self.lock();
        if w.requests.is_empty() {
            w.flushing = false;
            return None;
        }
        let n = w.requests.len().min(most);
        Some(w.requests.drain(..n).collect())
    }
}
