//! keyline-kps's WebRTC wire version 1 (spec §8–§10): stream frames and control messages
//! decoded strictly (what decodes re-encodes to the same bytes), and random sequences of
//! credit operations against the flow-control counters (the sender never exceeds a limit, the
//! receiver never admits past one, limits never go down).
//!
//! Input layout: one selector byte (mod 3), then — 0 a stream frame, 1 a control message,
//! 2 a sequence of 9-byte operations (op byte, u64 big-endian argument).

use keyline_kps::webrtc::proto::control::{Control, Limits};
use keyline_kps::webrtc::proto::flow::{
    OpenCredit, PeerStreams, RecvWindow, SendCredit, StreamSend, receive,
};
use keyline_kps::webrtc::proto::frame::{Frame, MAX_DATA_PAYLOAD, MAX_OFFSET};

/// Runs one wire-v1 check on `data`; panics only on a broken invariant.
pub fn kps_wire_v1(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => {
            if let Ok(frame) = Frame::decode(rest) {
                assert_eq!(frame.encode(), rest, "frames re-encode to the same bytes");
            }
        }
        1 => {
            if let Ok(message) = Control::decode(rest) {
                assert_eq!(message.encode(), rest, "control messages re-encode");
            }
        }
        _ => credit_ops(rest),
    }
}

fn credit_ops(data: &[u8]) {
    let mut send = SendCredit::default();
    let mut streams = [StreamSend::default(); 3];
    let mut open = OpenCredit::default();
    let mut conn = RecvWindow::new(1 << 20);
    let mut windows = [RecvWindow::new(1 << 16); 3];
    let mut peer = PeerStreams::new(4);
    let mut admitted_limit = [0u64; 3];
    for op in data.chunks_exact(9) {
        let arg = u64::from_be_bytes(op[1..9].try_into().expect("8 bytes"));
        let i = (arg % 3) as usize;
        match op[0] % 10 {
            0 => send.on_hello(Limits {
                initial_max_stream_data: arg % (1 << 20),
                initial_max_data: arg % (1 << 22),
                initial_max_streams: arg % 8,
            }),
            1 => send.on_max_data(arg),
            2 => streams[i].on_max_stream_data(arg),
            3 => {
                let want = (arg % (1 << 16)) as usize;
                let before = streams[i];
                let got = send.reserve(&mut streams[i], want);
                assert!(got <= want.min(MAX_DATA_PAYLOAD));
                assert_eq!(streams[i].reserved, before.reserved + got as u64);
                let limit = send.stream_limit(&streams[i]);
                assert!(
                    streams[i].sent + streams[i].reserved
                        <= limit.max(before.sent + before.reserved)
                );
            }
            4 => {
                let n = (arg % (streams[i].reserved + 1)) as usize;
                send.commit(&mut streams[i], n);
            }
            5 => {
                let n = (arg % (streams[i].reserved + 1)) as usize;
                send.release(&mut streams[i], n);
            }
            6 => {
                if open.reserve() {
                    if arg % 2 == 0 {
                        open.commit()
                    } else {
                        open.release()
                    }
                }
                open.on_max_streams(arg % 16);
            }
            7 => {
                let before = (windows[i].limit(), conn.limit());
                let n = arg % (1 << 17);
                if receive(&mut windows[i], &mut conn, n).is_ok() {
                    assert!(windows[i].unconsumed() <= before.0);
                }
                admitted_limit[i] = admitted_limit[i].max(windows[i].limit());
            }
            8 => {
                let before = windows[i].limit();
                if let Some(limit) = windows[i].consume(arg % (1 << 17)) {
                    assert!(limit > before && limit <= MAX_OFFSET, "limits only grow");
                }
                let _ = conn.consume(arg % (1 << 17));
            }
            _ => {
                if arg % 2 == 0 {
                    let _ = peer.on_open();
                } else {
                    let before = peer.advertised();
                    assert!(peer.on_retire() >= before);
                }
            }
        }
    }
}
