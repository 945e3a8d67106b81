//! What a file is, from its first bytes (never from the client's name or Content-Type).
//!
//! The signatures come from the `infer` crate, with stricter checks where its matchers are
//! loose (WebP, GIF). WebM is told apart here: `infer` needs 256 bytes and cannot say whether a
//! WebM holds video, so a small EBML walk reads the `DocType` and the `TrackType` of each track
//! before the first cluster. A WebM with a video track, or whose tracks are not within the
//! first [`SNIFF_LEN`] bytes, is `video/webm` (a `<video>` element plays audio too); one with
//! audio tracks only is `audio/webm` (what browsers' `MediaRecorder` makes of a voice note).
//!
//! MP4 files are `video/mp4` unless their brand says M4A: an audio-only MP4 with a generic
//! brand (`isom`, `mp42`) would need its `moov` box parsed, which may sit at the end of the
//! file. Browsers play such files in `<audio>` and `<video>` alike.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::ContentType;

/// Bytes kept from the start of an upload for detection.
pub const SNIFF_LEN: usize = 64 * 1024;

/// The broad kind of a supported file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Audio,
    Video,
    Image,
}

impl Kind {
    /// The name stored in the database and sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Audio => "audio",
            Kind::Video => "video",
            Kind::Image => "image",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "audio" => Kind::Audio,
            "video" => Kind::Video,
            "image" => Kind::Image,
            _ => return None,
        })
    }

    /// The message `content_type` that carries a file of this kind.
    pub fn content_type(self) -> ContentType {
        match self {
            Kind::Audio => ContentType::Audio,
            Kind::Video => ContentType::Video,
            Kind::Image => ContentType::Image,
        }
    }
}

/// A supported file: its MIME type and kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Detected {
    pub mime: &'static str,
    pub kind: Kind,
}

type Matcher = fn(&[u8]) -> bool;

/// The supported signatures, tried in order.
const SIGNATURES: &[(Matcher, &str, Kind)] = &[
    (is_ogg_audio, "audio/ogg", Kind::Audio),
    (infer::audio::is_mp3, "audio/mpeg", Kind::Audio),
    (infer::audio::is_m4a, "audio/mp4", Kind::Audio),
    (infer::audio::is_aac, "audio/aac", Kind::Audio),
    (infer::audio::is_wav, "audio/wav", Kind::Audio),
    (infer::audio::is_flac, "audio/flac", Kind::Audio),
    (infer::video::is_mp4, "video/mp4", Kind::Video),
    (infer::video::is_m4v, "video/mp4", Kind::Video),
    (infer::video::is_mov, "video/quicktime", Kind::Video),
    (infer::image::is_jpeg, "image/jpeg", Kind::Image),
    (infer::image::is_png, "image/png", Kind::Image),
    (is_webp, "image/webp", Kind::Image),
    (is_gif, "image/gif", Kind::Image),
];

/// The type of a file from its first bytes; `None` for anything unsupported.
pub fn sniff(prefix: &[u8]) -> Option<Detected> {
    if let Some(kind) = webm::kind(prefix) {
        return Some(match kind {
            Kind::Audio => Detected {
                mime: "audio/webm",
                kind,
            },
            _ => Detected {
                mime: "video/webm",
                kind: Kind::Video,
            },
        });
    }
    SIGNATURES
        .iter()
        .find(|(matches, _, _)| matches(prefix))
        .map(|&(_, mime, kind)| Detected { mime, kind })
}

/// Ogg with Opus, Vorbis or FLAC inside; Ogg Theora (video) is not supported.
fn is_ogg_audio(buf: &[u8]) -> bool {
    infer::audio::is_ogg(buf) && buf.get(28..35).is_none_or(|id| id != b"\x80theora")
}

/// `RIFF....WEBP` (`infer` only checks the second half).
fn is_webp(buf: &[u8]) -> bool {
    buf.starts_with(b"RIFF") && infer::image::is_webp(buf)
}

/// `GIF87a` or `GIF89a` (`infer` only checks `GIF`).
fn is_gif(buf: &[u8]) -> bool {
    buf.starts_with(b"GIF87a") || buf.starts_with(b"GIF89a")
}

/// Just enough EBML (Matroska's binary XML) to tell a WebM's tracks apart.
mod webm {
    use super::Kind;

    const EBML: u32 = 0x1A45_DFA3;
    const DOC_TYPE: u32 = 0x4282;
    const SEGMENT: u32 = 0x1853_8067;
    const TRACKS: u32 = 0x1654_AE6B;
    const TRACK_ENTRY: u32 = 0xAE;
    const TRACK_TYPE: u32 = 0x83;
    const CLUSTER: u32 = 0x1F43_B675;
    const TRACK_TYPE_VIDEO: u64 = 1;
    const TRACK_TYPE_AUDIO: u64 = 2;

    /// An element: its id and where its payload lies in the buffer (cut at the buffer's end;
    /// an unknown size runs to the end of the parent).
    struct Element {
        id: u32,
        start: usize,
        end: usize,
    }

    /// `Some(Audio)` for a WebM with audio tracks only, `Some(Video)` for any other WebM,
    /// `None` when `buf` does not start a WebM.
    pub(super) fn kind(buf: &[u8]) -> Option<Kind> {
        let header = element(buf, 0, buf.len())?;
        if header.id != EBML {
            return None;
        }
        let doc_type = children(buf, &header).find(|e| e.id == DOC_TYPE)?;
        let doc_type = &buf[doc_type.start..doc_type.end];
        if doc_type.split(|b| *b == 0).next() != Some(b"webm".as_slice()) {
            return None;
        }
        let (mut audio, mut video) = (false, false);
        if let Some(segment) = element(buf, header.end, buf.len()).filter(|e| e.id == SEGMENT) {
            for child in children(buf, &segment) {
                match child.id {
                    TRACKS => {
                        for entry in children(buf, &child).filter(|e| e.id == TRACK_ENTRY) {
                            for field in children(buf, &entry).filter(|e| e.id == TRACK_TYPE) {
                                match uint(&buf[field.start..field.end]) {
                                    TRACK_TYPE_VIDEO => video = true,
                                    TRACK_TYPE_AUDIO => audio = true,
                                    _ => {}
                                }
                            }
                        }
                        break;
                    }
                    CLUSTER => break,
                    _ => {}
                }
            }
        }
        Some(if audio && !video {
            Kind::Audio
        } else {
            Kind::Video
        })
    }

    /// The children of a master element.
    fn children<'a>(buf: &'a [u8], parent: &Element) -> impl Iterator<Item = Element> + 'a {
        let (mut pos, end) = (parent.start, parent.end);
        std::iter::from_fn(move || {
            let child = element(buf, pos, end)?;
            pos = child.end;
            Some(child)
        })
    }

    /// The element at `pos`, if its header fits before `limit`.
    fn element(buf: &[u8], pos: usize, limit: usize) -> Option<Element> {
        let bytes = buf.get(pos..limit)?;
        let (id_len, id) = vint(bytes, 4)?;
        let (size_len, size) = vint(&bytes[id_len..], 8)?;
        let id = u32::try_from(id).ok()?;
        let start = pos + id_len + size_len;
        let marker = 1u64 << (7 * size_len);
        let size = size & (marker - 1);
        let end = if size == marker - 1 {
            limit // "unknown size": up to the end of the parent
        } else {
            usize::try_from(size)
                .ok()
                .and_then(|s| start.checked_add(s))
                .map_or(limit, |end| end.min(limit))
        };
        Some(Element { id, start, end })
    }

    /// A variable-length integer with its length marker kept: (length, raw value).
    fn vint(bytes: &[u8], max_len: usize) -> Option<(usize, u64)> {
        let first = *bytes.first()?;
        let len = first.leading_zeros() as usize + 1;
        if len > max_len || bytes.len() < len {
            return None;
        }
        Some((
            len,
            bytes[..len]
                .iter()
                .fold(0u64, |n, b| (n << 8) | u64::from(*b)),
        ))
    }

    /// A big-endian unsigned integer of up to 8 bytes.
    fn uint(bytes: &[u8]) -> u64 {
        bytes
            .iter()
            .take(8)
            .fold(0u64, |n, b| (n << 8) | u64::from(*b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An EBML element with a one-byte size.
    fn el(id: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut out = id.to_vec();
        out.push(0x80 | u8::try_from(payload.len()).unwrap());
        out.extend_from_slice(payload);
        out
    }

    fn webm(track_types: &[u8], doc_type: &[u8]) -> Vec<u8> {
        let header = el(&[0x1A, 0x45, 0xDF, 0xA3], &el(&[0x42, 0x82], doc_type));
        let entries: Vec<u8> = track_types
            .iter()
            .flat_map(|t| el(&[0xAE], &el(&[0x83], &[*t])))
            .collect();
        let tracks = el(&[0x16, 0x54, 0xAE, 0x6B], &entries);
        let info = el(
            &[0x15, 0x49, 0xA9, 0x66],
            &el(&[0x2A, 0xD7, 0xB1], &[0x0F, 0x42, 0x40]),
        );
        // Segment of unknown size, as MediaRecorder writes it.
        let mut out = header;
        out.extend_from_slice(&[
            0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        out.extend_from_slice(&info);
        out.extend_from_slice(&tracks);
        out.extend_from_slice(&[
            0x1F, 0x43, 0xB6, 0x75, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        out
    }

    fn mime(buf: &[u8]) -> Option<&'static str> {
        sniff(buf).map(|d| d.mime)
    }

    #[test]
    fn webm_audio_and_video_are_told_apart() {
        assert_eq!(mime(&webm(&[2], b"webm")), Some("audio/webm"));
        assert_eq!(sniff(&webm(&[2], b"webm")).unwrap().kind, Kind::Audio);
        assert_eq!(mime(&webm(&[1, 2], b"webm")), Some("video/webm"));
        assert_eq!(mime(&webm(&[1], b"webm")), Some("video/webm"));
        // Tracks not seen (cut short): video, which plays audio too.
        assert_eq!(mime(&webm(&[2], b"webm")[..30]), Some("video/webm"));
        // Matroska that is not WebM is not supported.
        assert_eq!(mime(&webm(&[2], b"matroska")), None);
    }

    #[test]
    fn known_signatures() {
        let mut opus = b"OggS".to_vec();
        opus.resize(28, 0);
        opus.extend_from_slice(b"OpusHead");
        assert_eq!(mime(&opus), Some("audio/ogg"));
        let mut theora = b"OggS".to_vec();
        theora.resize(28, 0);
        theora.extend_from_slice(b"\x80theora");
        assert_eq!(mime(&theora), None);
        assert_eq!(mime(b"ID3\x04\x00\x00\x00\x00\x00\x00"), Some("audio/mpeg"));
        assert_eq!(mime(b"\x00\x00\x00\x20ftypM4A \x00\x00"), Some("audio/mp4"));
        assert_eq!(mime(b"\x00\x00\x00\x20ftypisom\x00\x00"), Some("video/mp4"));
        assert_eq!(
            mime(b"\x00\x00\x00\x14ftypqt  \x20\x05\x03\x00qt  "),
            Some("video/quicktime")
        );
        assert_eq!(mime(b"RIFF\x24\x00\x00\x00WAVEfmt "), Some("audio/wav"));
        assert_eq!(mime(b"fLaC\x00\x00\x00\x22"), Some("audio/flac"));
        assert_eq!(mime(b"\xFF\xF1\x50\x80"), Some("audio/aac"));
        assert_eq!(mime(b"\xFF\xD8\xFF\xE0"), Some("image/jpeg"));
        assert_eq!(mime(b"\x89PNG\r\n\x1a\n"), Some("image/png"));
        assert_eq!(mime(b"RIFF\x24\x00\x00\x00WEBPVP8 "), Some("image/webp"));
        assert_eq!(mime(b"GIF89a\x01\x00"), Some("image/gif"));
    }

    #[test]
    fn anything_else_is_refused() {
        for buf in [
            b"".as_slice(),
            b"hello, I am a text file pretending to be audio.mp3",
            b"<html><script>alert(1)</script></html>",
            b"%PDF-1.7",
            b"PK\x03\x04",
            b"GIF is not enough",
            b"abcdefghWEBPVP8 ",
            b"RIFF\x24\x00\x00\x00AVI LIST",
            b"\x1A\x45\xDF",
        ] {
            assert_eq!(mime(buf), None, "{buf:?}");
        }
    }
}
