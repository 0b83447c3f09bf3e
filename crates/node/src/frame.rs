//! Length-prefixed frames: a 4-byte big-endian length, then that many bytes. A frame
//! above the limit closes the connection before anything is allocated for it, and a
//! frame's buffer grows with the bytes that actually arrive: a peer that announces a
//! large frame and then sends nothing holds almost no memory (it held the whole announced
//! length before, up to 64 MiB per connection).

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The buffer a frame starts with; it grows (doubling) as the frame's bytes arrive.
const FRAME_INITIAL_CAPACITY_BYTES: usize = 64 << 10;

/// Read one frame of at most `max` bytes.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    read_frame_into(r, max, &mut buf).await?;
    Ok(buf)
}

/// Read one frame of at most `max` bytes whose bytes, once its length has arrived, must
/// all arrive within `deadline(len)`: waiting for a frame to start is free (links idle
/// between messages), but a peer that starts one and stalls loses the connection.
pub async fn read_frame_within<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
    deadline: fn(usize) -> std::time::Duration,
) -> std::io::Result<Vec<u8>> {
    let len = read_len(r, max).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(deadline(len), read_body(r, len, &mut buf))
        .await
        .map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("frame of {len} bytes not complete in time"),
            )
        })??;
    Ok(buf)
}

/// `read_frame` into `buf` (cleared first), which holds what arrived if the read stops
/// half-way.
async fn read_frame_into<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
    buf: &mut Vec<u8>,
) -> std::io::Result<()> {
    let len = read_len(r, max).await?;
    read_body(r, len, buf).await
}

/// A frame's length, refused above `max` before anything is allocated for it.
async fn read_len<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> std::io::Result<usize> {
    let len = r.read_u32().await? as usize;
    if len > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds the {max}-byte limit"),
        ));
    }
    Ok(len)
}

/// A frame's `len` bytes into `buf` (cleared first), growing it as they arrive.
async fn read_body<R: AsyncRead + Unpin>(
    r: &mut R,
    len: usize,
    buf: &mut Vec<u8>,
) -> std::io::Result<()> {
    buf.clear();
    buf.reserve(len.min(FRAME_INITIAL_CAPACITY_BYTES));
    let read = r.take(len as u64).read_to_end(buf).await?;
    if read < len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("frame ended after {read} of {len} bytes"),
        ));
    }
    Ok(())
}

/// Write one frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    write_frame_unflushed(w, bytes).await?;
    // A TLS stream may keep written bytes in its session until flushed.
    w.flush().await
}

/// Write one frame without flushing, for a writer that flushes after a burst of them.
pub async fn write_frame_unflushed<W: AsyncWrite + Unpin>(
    w: &mut W,
    bytes: &[u8],
) -> std::io::Result<()> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "frame too large"))?;
    w.write_all(&len.to_be_bytes()).await?;
    w.write_all(bytes).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_at_and_below_the_limit() -> std::io::Result<()> {
        let (mut a, mut b) = tokio::io::duplex(1 << 20);
        for len in [0usize, 1, 1000, 200_000] {
            let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            write_frame(&mut a, &bytes).await?;
            assert_eq!(read_frame(&mut b, 200_000).await?, bytes);
        }
        write_frame(&mut a, &[0u8; 11]).await?;
        let refused = read_frame(&mut b, 10).await;
        assert_eq!(
            refused.map_err(|e| e.kind()),
            Err(std::io::ErrorKind::InvalidData)
        );
        Ok(())
    }

    #[tokio::test]
    async fn an_announced_frame_that_does_not_arrive_holds_only_what_arrived() -> std::io::Result<()>
    {
        let announced: u32 = 64 << 20;
        let (mut peer, mut us) = tokio::io::duplex(1 << 16);
        peer.write_u32(announced).await?;
        peer.write_all(&[7u8; 10]).await?;
        let mut buf = Vec::new();
        let read = tokio::time::timeout(
            std::time::Duration::from_millis(100),
            read_frame_into(&mut us, announced as usize, &mut buf),
        )
        .await;
        assert!(read.is_err(), "still waiting for the rest of the frame");
        assert_eq!(buf.len(), 10);
        assert!(
            buf.capacity() <= 2 * FRAME_INITIAL_CAPACITY_BYTES,
            "{} bytes held for 10 received",
            buf.capacity()
        );
        // A peer that hangs up mid-frame is an error, not a short frame.
        let (mut peer, mut us) = tokio::io::duplex(1 << 16);
        peer.write_u32(100).await?;
        peer.write_all(&[1u8; 5]).await?;
        drop(peer);
        let mut buf = Vec::new();
        let cut = read_frame_into(&mut us, 1000, &mut buf).await;
        assert!(cut.is_err());
        Ok(())
    }

    /// A frame that starts and stalls ends the connection at its deadline, while a link
    /// that is merely idle between frames waits as long as it likes.
    #[tokio::test(start_paused = true)]
    async fn a_stalled_frame_times_out_and_an_idle_link_does_not() -> std::io::Result<()> {
        fn deadline(_: usize) -> std::time::Duration {
            std::time::Duration::from_secs(10)
        }
        let (mut peer, mut us) = tokio::io::duplex(1 << 16);
        peer.write_u32(100).await?;
        peer.write_all(&[1u8; 10]).await?;
        let started = tokio::time::Instant::now();
        let stalled = read_frame_within(&mut us, 1000, deadline).await;
        assert_eq!(
            stalled.map_err(|e| e.kind()),
            Err(std::io::ErrorKind::TimedOut)
        );
        assert_eq!(started.elapsed(), std::time::Duration::from_secs(10));
        let (mut peer, mut us) = tokio::io::duplex(1 << 16);
        let sender = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            write_frame(&mut peer, b"late but whole").await
        });
        let frame = read_frame_within(&mut us, 1000, deadline).await?;
        assert_eq!(frame, b"late but whole");
        sender.await.map_err(std::io::Error::other)??;
        Ok(())
    }
}
