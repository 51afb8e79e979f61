//! The engine side of the HTTP/1 wire check (`request::wire`): an IO wrapper that releases
//! each request head to hyper only once it was checked, the per-connection record of a
//! refused head that the service answers, and the switch of a connection that asked to
//! upgrade (held until its answer says tunnel or not).

use crate::request::FramingError;
pub use crate::request::wire::WireCheck;
use crate::request::wire::{Count, STAND_IN};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What a connection's wire check found, and how busy the connection is.
pub struct Connection {
    /// Requests served so far on the connection (the index of the next one).
    served: AtomicU64,
    /// The refused head: its index, and why.
    refused: OnceLock<(u64, FramingError)>,
    /// Requests being answered now.
    active: AtomicU64,
    /// When a request last started or ended, in ms since `opened`.
    last: AtomicU64,
    /// When the head the wire check holds back started to arrive, in ms since `opened`, plus
    /// one; 0 while none is held.
    head_since: AtomicU64,
    /// Told when a head starts being held, so the connection's supervisor sets its deadline.
    pub head_changed: tokio::sync::watch::Sender<()>,
    opened: tokio::time::Instant,
    /// A request asked to switch protocols and its answer is awaited (the fast path's one
    /// load); the details under the lock.
    upgrading: AtomicBool,
    switch: Mutex<Switch>,
}

/// The request that asked to switch protocols, the engine's answer, and the reader waiting
/// for it (the wire check reads nothing meanwhile).
#[derive(Default)]
struct Switch {
    awaiting: Option<u64>,
    switched: Option<bool>,
    reader: Option<Waker>,
}

impl Default for Connection {
    fn default() -> Connection {
        Connection {
            served: AtomicU64::new(0),
            refused: OnceLock::new(),
            active: AtomicU64::new(0),
            last: AtomicU64::new(0),
            head_since: AtomicU64::new(0),
            head_changed: tokio::sync::watch::Sender::new(()),
            opened: tokio::time::Instant::now(),
            upgrading: AtomicBool::new(false),
            switch: Mutex::new(Switch::default()),
        }
    }
}

/// Held while a request is answered: the connection is not idle meanwhile.
pub struct Busy<'a>(&'a Connection);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.touch();
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Connection {
    fn touch(&self) {
        let ms = self.opened.elapsed().as_millis() as u64;
        self.last.store(ms, Ordering::Relaxed);
    }

    /// Marks a request as being answered until the returned guard is dropped.
    pub fn busy(&self) -> Busy<'_> {
        self.active.fetch_add(1, Ordering::Relaxed);
        self.touch();
        Busy(self)
    }

    /// When the connection will have been quiet for `idle`, as things stand.
    pub fn quiet_until(&self, idle: Duration) -> tokio::time::Instant {
        self.opened + Duration::from_millis(self.last.load(Ordering::Relaxed)) + idle
    }

    /// No request answered now, and none started or ended for `idle`.
    pub fn is_idle(&self, idle: Duration) -> bool {
        self.active.load(Ordering::Relaxed) == 0
            && tokio::time::Instant::now() >= self.quiet_until(idle)
    }

    /// When the request head held back now started to arrive.
    pub fn head_started(&self) -> Option<tokio::time::Instant> {
        match self.head_since.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(self.opened + Duration::from_millis(ms - 1)),
        }
    }

    /// Records whether the wire check holds part of a head now.
    fn holding(&self, held: bool) {
        let since = self.head_since.load(Ordering::Relaxed);
        if held && since == 0 {
            let ms = self.opened.elapsed().as_millis() as u64 + 1;
            self.head_since.store(ms, Ordering::Relaxed);
            self.head_changed.send_replace(());
        } else if !held && since != 0 {
            self.head_since.store(0, Ordering::Relaxed);
        }
    }

    /// Called once per request, in order: its index on the connection, and the refusal
    /// when this request is the stand-in of a refused head.
    pub fn next_request(&self) -> (u64, Option<FramingError>) {
        let index = self.served.fetch_add(1, Ordering::Relaxed);
        let refused = self
            .refused
            .get()
            .filter(|(at, _)| index >= *at)
            .map(|(_, e)| *e);
        (index, refused)
    }

    fn switch(&self) -> std::sync::MutexGuard<'_, Switch> {
        self.switch.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether request `index` asked to switch protocols and the connection waits for its
    /// answer: only then may it be answered 101.
    pub fn may_switch(&self, index: u64) -> bool {
        self.upgrading.load(Ordering::Acquire) && self.switch().awaiting == Some(index)
    }

    /// Request `index` was answered, with 101 (`switched`) or not: the wire check goes on
    /// accordingly.
    pub fn answered(&self, index: u64, switched: bool) {
        if !self.upgrading.load(Ordering::Acquire) {
            return;
        }
        let mut s = self.switch();
        if s.awaiting == Some(index) {
            s.switched = Some(switched);
            if let Some(w) = s.reader.take() {
                w.wake();
            }
        }
    }

    /// The wire check released the head of request `index`, which asks to switch.
    fn awaits_switch(&self, index: u64) {
        let mut s = self.switch();
        *s = Switch {
            awaiting: Some(index),
            ..Switch::default()
        };
        self.upgrading.store(true, Ordering::Release);
    }

    /// The answer to request `index`'s upgrade, or `None` (and the reader woken later).
    fn poll_switch(&self, index: u64, cx: &Context<'_>) -> Option<bool> {
        let mut s = self.switch();
        match s.switched {
            Some(switched) if s.awaiting == Some(index) => {
                *s = Switch::default();
                self.upgrading.store(false, Ordering::Release);
                Some(switched)
            }
            _ => {
                s.reader = Some(cx.waker().clone());
                None
            }
        }
    }
}

/// A client stream whose HTTP/1 heads are checked before hyper reads them.
pub struct Checked<S> {
    inner: S,
    check: WireCheck,
    /// Bytes released and not read by hyper yet.
    ready: Vec<u8>,
    at: usize,
    /// No more bytes after `ready` (the client closed, or a head was refused).
    ended: bool,
    conn: Arc<Connection>,
}

impl<S> Checked<S> {
    pub fn new(inner: S, check: WireCheck, conn: Arc<Connection>) -> Checked<S> {
        Checked {
            inner,
            check,
            ready: Vec::new(),
            at: 0,
            ended: false,
            conn,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Checked<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        loop {
            if me.at < me.ready.len() {
                let n = (me.ready.len() - me.at).min(buf.remaining());
                buf.put_slice(&me.ready[me.at..me.at + n]);
                me.at += n;
                if me.at == me.ready.len() {
                    me.ready.clear();
                    me.at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if let Some(at) = me.check.awaiting_upgrade() {
                let switched = ready!(
                    me.conn
                        .poll_switch(at, cx)
                        .map_or(Poll::Pending, Poll::Ready)
                );
                let refused = me.check.upgrade_answered(switched, &mut me.ready);
                me.checked(refused);
                continue;
            }
            if me.ended {
                if me.conn.refused.get().is_some() {
                    // After the stand-in: hyper answers it with `Connection: close` and
                    // closes; an end of stream now would make it drop the answer.
                    return Poll::Pending;
                }
                return Poll::Ready(Ok(()));
            }
            if !me.check.holds_head() {
                // The common case: read where hyper wants the bytes, check them there, and
                // take back only what must be held (the start of a head still incomplete).
                let start = buf.filled().len();
                ready!(Pin::new(&mut me.inner).poll_read(cx, buf))?;
                let end = buf.filled().len();
                if start == end {
                    me.ready = me.check.finish();
                    me.ended = true;
                    continue;
                }
                let mut released = Count(0);
                let refused = me.check.feed(&buf.filled()[start..end], &mut released);
                buf.set_filled(start + released.0);
                me.note_upgrade();
                // A broken chunk-size line: the engine meets the end of the stream there.
                me.ended |= me.check.is_cut();
                me.conn.holding(me.check.holds_head());
                if let Some(r) = refused {
                    let _ = me.conn.refused.set((r.index, r.error));
                    me.ready.extend_from_slice(STAND_IN);
                    me.ended = true;
                }
                if released.0 > 0 {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            // Part of a head is held: what the engine reads is assembled in `ready`.
            let mut space = [std::mem::MaybeUninit::<u8>::uninit(); 8192];
            let mut read = ReadBuf::uninit(&mut space);
            ready!(Pin::new(&mut me.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                me.ready = me.check.finish();
                me.ended = true;
                continue;
            }
            let refused = me.check.feed(read.filled(), &mut me.ready);
            me.checked(refused);
        }
    }
}

impl<S> Checked<S> {
    /// After bytes were checked into `ready`: a refused head's stand-in follows them and
    /// ends the stream; the connection learns what the check holds.
    fn checked(&mut self, refused: Option<crate::request::wire::Refused>) {
        if let Some(r) = refused {
            let _ = self.conn.refused.set((r.index, r.error));
            self.ready.extend_from_slice(STAND_IN);
            self.ended = true;
        }
        self.note_upgrade();
        self.ended |= self.check.is_cut();
        self.conn.holding(self.check.holds_head());
    }

    /// After bytes were checked: a released head that asks to switch is recorded before
    /// the engine sees it, so its service can tell whether it may answer 101.
    fn note_upgrade(&self) {
        if let Some(at) = self.check.awaiting_upgrade()
            && !self.conn.upgrading.load(Ordering::Acquire)
        {
            self.conn.awaits_switch(at);
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Checked<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
