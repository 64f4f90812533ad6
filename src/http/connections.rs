//! Open connections, capped (`max_connections`), so that connections which never finish a
//! request cannot use up the process's file descriptors and leave nobody served, health
//! checks included.
//!
//! Every accepted connection is registered. While a request on it is in progress, from its
//! headers to the last byte of its response (an upload, a progress stream), it is busy;
//! otherwise it is idle: waiting for its first request's headers (a slow or silent client)
//! or between keep-alive requests. At the cap, a new connection closes the connection idle
//! the longest and takes its place; if every connection is busy, the new one is closed at
//! once. So a flood of silent connections only ever costs each other their places.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::Notify;

pub struct Connections {
    cap: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    open: BTreeMap<u64, Entry>,
}

struct Entry {
    /// Requests in progress on the connection (HTTP/1.1: at most one).
    busy: usize,
    idle_since: Instant,
    close: Arc<Notify>,
}

impl Connections {
    pub fn new(cap: usize) -> Arc<Connections> {
        Arc::new(Connections { cap, inner: Mutex::new(Inner::default()) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a new connection, closing the longest-idle one at the cap; `None` when
    /// every open connection is busy and this one must be closed instead.
    pub fn admit(self: &Arc<Self>) -> Option<Registration> {
        let mut inner = self.lock();
        if inner.open.len() >= self.cap {
            let idlest = inner
                .open
                .iter()
                .filter(|(_, entry)| entry.busy == 0)
                .min_by_key(|(_, entry)| entry.idle_since)
                .map(|(id, _)| *id)?;
            if let Some(evicted) = inner.open.remove(&idlest) {
                evicted.close.notify_one();
            }
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let close = Arc::new(Notify::new());
        inner.open.insert(id, Entry { busy: 0, idle_since: Instant::now(), close: Arc::clone(&close) });
        Some(Registration { id, connections: Arc::clone(self), close })
    }
}

/// One open connection's place; given up when dropped.
pub struct Registration {
    id: u64,
    connections: Arc<Connections>,
    close: Arc<Notify>,
}

impl Registration {
    /// Resolves when a newer connection took this one's place.
    pub async fn closed(&self) {
        self.close.notified().await;
    }

    /// Marks a request in progress until the guard is dropped.
    pub fn busy(&self) -> Busy {
        if let Some(entry) = self.connections.lock().open.get_mut(&self.id) {
            entry.busy += 1;
        }
        Busy { id: self.id, connections: Arc::clone(&self.connections) }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.connections.lock().open.remove(&self.id);
    }
}

/// A request in progress; see [`Registration::busy`].
pub struct Busy {
    id: u64,
    connections: Arc<Connections>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(entry) = self.connections.lock().open.get_mut(&self.id) {
            entry.busy = entry.busy.saturating_sub(1);
            entry.idle_since = Instant::now();
        }
    }
}

/// A response body that keeps its connection busy until it has been sent.
pub struct BusyBody<B> {
    body: B,
    /// Held, never read: dropping it marks the connection idle.
    _busy: Busy,
}

impl<B> BusyBody<B> {
    pub fn new(body: B, busy: Busy) -> BusyBody<B> {
        BusyBody { body, _busy: busy }
    }
}

impl<B: Body + Unpin> Body for BusyBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt as _;

    use super::*;

    #[test]
    fn at_the_cap_the_longest_idle_connection_gives_way_and_busy_ones_do_not() {
        let connections = Connections::new(2);
        let first = connections.admit().unwrap();
        let second = connections.admit().unwrap();
        let busy = second.busy();
        let third = connections.admit().unwrap();
        assert_eq!(connections.lock().open.len(), 2);
        // The first was idle: it was told to close, and its place went to the third.
        assert!(first.closed().now_or_never().is_some());
        assert!(second.closed().now_or_never().is_none());
        let also_busy = third.busy();
        assert!(connections.admit().is_none(), "every connection is busy");
        drop(busy);
        assert!(connections.admit().is_some());
        drop(also_busy);
    }
}
