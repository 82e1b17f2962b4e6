//! The `events` ring buffer as an async source of owned records.

use aya::maps::{Map, MapData, RingBuf};
use std::io;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Reads the `events` RINGBUF map. Must be created inside a tokio runtime.
pub struct EventStream {
    fd: AsyncFd<RingBuf<MapData>>,
}

fn drain_into(rb: &mut RingBuf<MapData>, out: &mut Vec<Vec<u8>>) {
    while let Some(item) = rb.next() {
        out.push(item.to_vec());
    }
}

impl EventStream {
    pub fn new(map: Map) -> anyhow::Result<EventStream> {
        let rb = RingBuf::try_from(map)?;
        // SAFETY: the ring buffer owns its fd, which stays open and unchanged for as long as
        // the `AsyncFd` owns the ring buffer.
        let fd = unsafe { AsyncFd::register_with_interest(rb, Interest::READABLE) }
            .map_err(io::Error::from)?;
        Ok(EventStream { fd })
    }

    /// Wait for records and return all that are available (at least one). Cancel-safe: no
    /// record is consumed unless it is returned.
    pub async fn next_batch(&mut self) -> io::Result<Vec<Vec<u8>>> {
        loop {
            let mut guard = self.fd.readable_mut().await?;
            let mut out = Vec::new();
            drain_into(guard.get_inner_mut(), &mut out);
            // Everything was consumed: wait for the next wakeup. Readiness set by a newer
            // event is kept by tokio.
            guard.clear_ready();
            if !out.is_empty() {
                return Ok(out);
            }
        }
    }

    /// The records available right now, without waiting.
    pub fn drain(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        drain_into(self.fd.get_mut(), &mut out);
        out
    }
}
