//! The bodies the proxy passes on: the client's request body, which remembers when its
//! framing broke (a 400, not the upstream's 502), stalled or grew over the route's limit; and
//! the upstream's answer body, cut when the upstream pauses too long in the middle of it.

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

/// Why the client's request body stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFault {
    /// Its framing broke (a malformed chunk, a body cut short): 400.
    Framing,
    /// Over the route's limit: 413.
    TooLarge,
    /// No bytes for `server.timeouts.body`: 408.
    Stalled,
}

#[derive(Debug)]
pub struct BodyError(BodyFault);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "client request body: {:?}", self.0)
    }
}

impl std::error::Error for BodyError {}

/// Why an upstream's answer body ended early.
#[derive(Debug)]
pub enum AnswerBodyError {
    Upstream(hyper::Error),
    /// Nothing came for longer than the upstream's `timeouts.body`.
    Stalled(Duration),
}

impl std::fmt::Display for AnswerBodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnswerBodyError::Upstream(e) => write!(f, "upstream answer body: {e}"),
            AnswerBodyError::Stalled(d) => {
                write!(f, "upstream answer body: nothing for {} ms", d.as_millis())
            }
        }
    }
}

impl std::error::Error for AnswerBodyError {}

/// The upstream's answer body on its way to the client, cut when the upstream pauses longer
/// than `pause` in the middle of it; the pause is measured only while the gateway waits for
/// the upstream (a slow client holds the body back without counting against it).
pub struct Paced<E: Ended> {
    inner: Incoming,
    pause: Pause,
    /// Told when the body was read to its end (and dropped unread otherwise).
    then: Option<E>,
    ended: bool,
}

/// What is done once an answer's body has been passed on in full: the worker's own
/// connection it came on goes back to its pool ([`super::h1_pool::Lent`]).
pub trait Ended: Unpin {
    fn ended(self);
}

impl<E: Ended> Paced<E> {
    pub fn new(inner: Incoming, pause: Duration, then: Option<E>) -> Paced<E> {
        Paced {
            inner,
            pause: Pause::new(pause),
            then,
            ended: false,
        }
    }
}

impl<E: Ended> Drop for Paced<E> {
    fn drop(&mut self) {
        if let Some(then) = self.then.take()
            && (self.ended || self.inner.is_end_stream())
        {
            then.ended();
        }
    }
}

/// The longest pause allowed between two frames of a body, timed only while a frame is
/// waited for; the timer is made the first time the body has to wait (most never do).
struct Pause {
    pause: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Pause {
    fn new(pause: Duration) -> Pause {
        Pause { pause, timer: None }
    }

    /// A frame came: the pause starts again.
    fn progressed(&mut self) {
        if let Some(t) = self.timer.as_mut() {
            t.as_mut().reset(tokio::time::Instant::now() + self.pause);
        }
    }

    /// Nothing came: whether the pause is over (else the waker is registered).
    fn over(&mut self, cx: &mut Context<'_>) -> bool {
        let pause = self.pause;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(pause)));
        timer.as_mut().poll(cx).is_ready()
    }
}

impl<E: Ended> Body for Paced<E> {
    type Data = Bytes;
    type Error = AnswerBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, AnswerBodyError>>> {
        let me = self.get_mut();
        match Pin::new(&mut me.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                me.pause.progressed();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(AnswerBodyError::Upstream(e)))),
            Poll::Ready(None) => {
                me.ended = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                let pause = me.pause.pause;
                if me.pause.over(cx) {
                    tracing::warn!(
                        "upstream answer body stalled for {} ms: cut",
                        pause.as_millis()
                    );
                    return Poll::Ready(Some(Err(AnswerBodyError::Stalled(pause))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The client's request body on its way upstream, bounded in size and in the pause between
/// two reads; what stopped it is kept in `fault`, so the answer says it was the client's.
pub struct Watched {
    inner: Incoming,
    limit: u64,
    read: u64,
    /// Bytes read so far, for the request log (a body without `Content-Length`).
    pub counted: Arc<AtomicU64>,
    pause: Pause,
    pub fault: Arc<OnceLock<BodyFault>>,
}

impl Watched {
    pub fn new(inner: Incoming, limit: u64, pause: Duration) -> Watched {
        Watched {
            inner,
            limit,
            read: 0,
            counted: Arc::default(),
            pause: Pause::new(pause),
            fault: Arc::default(),
        }
    }

    fn fail(&self, f: BodyFault) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let _ = self.fault.set(f);
        Poll::Ready(Some(Err(BodyError(f))))
    }
}

impl Body for Watched {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let me = self.get_mut();
        match Pin::new(&mut me.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    me.read += data.len() as u64;
                    me.counted.store(me.read, Ordering::Relaxed);
                    if me.read > me.limit {
                        return me.fail(BodyFault::TooLarge);
                    }
                }
                me.pause.progressed();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(_))) => me.fail(BodyFault::Framing),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                if me.pause.over(cx) {
                    return me.fail(BodyFault::Stalled);
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
