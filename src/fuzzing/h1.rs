//! Differential reading of one HTTP/1.1 response: soakd's fast path ([`crate::client::wire`],
//! driven exactly as [`crate::client::http1`] drives it) against hyper's client connection (the
//! client under reqwest), both fed the same bytes in the same pieces, in memory.
//!
//! Each side's reading ends in an [`H1Read`]: the failure before the head (outcome and the
//! warning's detail), or the status, headers, body bytes, how the body ended and whether the
//! connection could carry another request. The two must be equal for any bytes and any
//! split. The end of the input is the peer closing, signalled only once a side waits for more
//! (so a response followed by nothing keeps its connection open, as a real peer's would).
//!
//! hyper is driven without a runtime: its connection and the request are polled by hand with a
//! no-op waker, and the in-memory peer answers `Pending` while it has nothing more to give, so
//! a run is deterministic and takes microseconds.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use hyper::body::Body;
use hyper::header::HeaderMap;

use crate::client::classify::{body_error_is_parse, head_error_of_hyper, SendFailure};
use crate::client::wire::{self, BodyFault, BodyReader, BodyStep};

/// How a response's body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEnd {
    /// Read to its end.
    Complete,
    /// Malformed framing or a framing cap crossed (`protocol_error`).
    Malformed,
    /// The peer closed short of the end.
    Lost,
}

/// What one client made of one response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum H1Read {
    /// No response head: the failure as both clients report it.
    Failed(SendFailure),
    /// A response head, and its body as far as it went.
    Response {
        status: u16,
        headers: HeaderMap,
        body: Vec<u8>,
        end: BodyEnd,
        /// The connection may carry another request.
        reused: bool,
    },
}

/// Piece sizes the input is fed in, cycled (a 0 is read as 1).
fn piece(splits: &[usize], i: usize) -> usize {
    if splits.is_empty() {
        usize::MAX
    } else {
        splits[i % splits.len()].max(1)
    }
}

/// soakd's fast path reading `input`, fed in pieces of `splits`.
pub fn soakd(input: &[u8], splits: &[usize]) -> H1Read {
    let (mut at, mut pieces) = (0usize, 0usize);
    let mut buf = BytesMut::new();
    // Feeds the next piece; false at the end of the input (the peer closed).
    let mut fill = |buf: &mut BytesMut| {
        if at == input.len() {
            return false;
        }
        let n = piece(splits, pieces).min(input.len() - at);
        buf.extend_from_slice(&input[at..at + n]);
        at += n;
        pieces += 1;
        true
    };
    let mut reader = wire::HeadReader::default();
    let head = loop {
        match reader.read(&mut buf) {
            Ok(Some(h)) => break h,
            Ok(None) => {}
            Err(e) => return H1Read::Failed(SendFailure::head(e)),
        }
        if !fill(&mut buf) {
            return H1Read::Failed(SendFailure::lost_before_head());
        }
    };
    let mut reader = BodyReader::new(head.framing);
    let mut body = Vec::new();
    let end = loop {
        let step = match reader.step(&mut buf) {
            Ok(BodyStep::NeedMore) if !fill(&mut buf) => reader.at_eof(),
            s => s,
        };
        match step {
            Ok(BodyStep::Data(b)) => body.extend_from_slice(&b),
            Ok(BodyStep::NeedMore) => {}
            Ok(BodyStep::End) => break BodyEnd::Complete,
            Err(BodyFault::Malformed) => break BodyEnd::Malformed,
            Err(BodyFault::Lost) => break BodyEnd::Lost,
        }
    };
    // The pool's checkout finds any byte that followed the body (`Conn::usable`).
    let reused = end == BodyEnd::Complete && wire::reusable(&head, &buf) && at == input.len();
    H1Read::Response {
        status: head.status.as_u16(),
        headers: head.headers,
        body,
        end,
        reused,
    }
}

/// The in-memory peer: gives the input in pieces, then `Pending` until told to close.
struct Peer {
    input: Vec<u8>,
    splits: Vec<usize>,
    at: usize,
    pieces: usize,
    closed: bool,
    /// Bytes handed to hyper so far, to tell progress from a stall.
    given: usize,
    /// The request was written: the peer answers only then (as a server reads first).
    asked: bool,
}

#[derive(Clone)]
struct PeerIo(Rc<RefCell<Peer>>);

impl hyper::rt::Read for PeerIo {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        let mut p = self.0.borrow_mut();
        if !p.asked {
            Poll::Pending
        } else if p.at < p.input.len() {
            let n = piece(&p.splits, p.pieces)
                .min(p.input.len() - p.at)
                .min(buf.remaining());
            let at = p.at;
            buf.put_slice(&p.input[at..at + n]);
            p.at += n;
            p.pieces += 1;
            p.given += n;
            Poll::Ready(Ok(()))
        } else if p.closed {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }
}

impl hyper::rt::Write for PeerIo {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.0.borrow_mut().asked = true;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

type Conn = hyper::client::conn::http1::Connection<PeerIo, String>;

/// hyper's connection and the peer, polled by hand.
struct Driver {
    peer: Rc<RefCell<Peer>>,
    conn: Option<Pin<Box<Conn>>>,
}

impl Driver {
    /// Polls `f` and the connection until `f` is ready; the peer closes once nothing moves
    /// (the input is all given and neither made progress). `None`: stuck even after the close.
    fn until<T>(&mut self, mut f: impl FnMut(&mut Context<'_>) -> Poll<T>) -> Option<T> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut still = 0;
        loop {
            let given = self.peer.borrow().given;
            let conn_done = match &mut self.conn {
                Some(c) => c.as_mut().poll(&mut cx).is_ready(),
                None => false,
            };
            if conn_done {
                self.conn = None;
            }
            if let Poll::Ready(v) = f(&mut cx) {
                return Some(v);
            }
            let moved = conn_done || self.peer.borrow().given != given;
            still = if moved { 0 } else { still + 1 };
            if still >= 3 {
                let mut p = self.peer.borrow_mut();
                if p.closed {
                    return None;
                }
                p.closed = true;
                still = 0;
            }
        }
    }

    /// Polls the connection until nothing moves, without closing the peer.
    fn settle(&mut self) {
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..8 {
            if let Some(c) = &mut self.conn {
                if c.as_mut().poll(&mut cx).is_ready() {
                    self.conn = None;
                }
            }
        }
    }
}

/// hyper's client connection reading `input`, fed in pieces of `splits`, for a `POST`.
pub fn hyper(input: &[u8], splits: &[usize]) -> H1Read {
    let peer = Rc::new(RefCell::new(Peer {
        input: input.to_vec(),
        splits: splits.to_vec(),
        at: 0,
        pieces: 0,
        closed: false,
        given: 0,
        asked: false,
    }));
    let mut cx = Context::from_waker(Waker::noop());
    let mut handshake = std::pin::pin!(hyper::client::conn::http1::handshake::<_, String>(PeerIo(
        peer.clone()
    )));
    let Poll::Ready(Ok((mut sender, conn))) = handshake.as_mut().poll(&mut cx) else {
        unreachable!("an HTTP/1 handshake over a ready stream completes at once");
    };
    let mut d = Driver {
        peer,
        conn: Some(Box::pin(conn)),
    };
    let req = hyper::Request::post("/v1/chat/completions")
        .header("host", "soakd.test")
        .body(String::from("{}"))
        .expect("request");
    let mut sent = std::pin::pin!(sender.send_request(req));
    let resp = match d.until(|cx| sent.as_mut().poll(cx)) {
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            return H1Read::Failed(match head_error_of_hyper(&e) {
                Some(h) => SendFailure::head(h),
                None => SendFailure::lost_before_head(),
            })
        }
        None => return H1Read::Failed(SendFailure::timed_out()),
    };
    let status = resp.status().as_u16();
    let (parts, mut incoming) = resp.into_parts();
    let mut body = Vec::new();
    let end = loop {
        let frame = d.until(|cx| Pin::new(&mut incoming).poll_frame(cx));
        match frame {
            Some(Some(Ok(f))) => {
                if let Ok(data) = f.into_data() {
                    body.extend_from_slice(&data);
                }
            }
            Some(None) => break BodyEnd::Complete,
            Some(Some(Err(e))) if body_error_is_parse(&e) => break BodyEnd::Malformed,
            Some(Some(Err(_))) | None => break BodyEnd::Lost,
        }
    };
    drop(incoming);
    let reused = end == BodyEnd::Complete && {
        d.settle();
        d.conn.is_some()
            && matches!(
                sender.poll_ready(&mut Context::from_waker(Waker::noop())),
                Poll::Ready(Ok(()))
            )
    };
    H1Read::Response {
        status,
        headers: parts.headers,
        body,
        end,
        reused,
    }
}
