//! Compressed request bodies: `Content-Encoding: gzip` (or `x-gzip`) and `deflate` (zlib, or raw
//! deflate as some clients send it) are decompressed before the handler, the route's size limit
//! applying to the decompressed bytes; decompression stops as soon as the output passes the
//! limit, so a small bomb costs no more than an honest body. Any other coding is a 415.

use std::io::Read;

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use flate2::read::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};
use tailor_core::event::MAX_BATCH_BYTES;
use tailor_core::ErrorCode;

use crate::{ApiError, BODY_LIMIT};

/// A content coding the server decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Gzip,
    Deflate,
}

/// Decodes a compressed body in place (removing `Content-Encoding`), or refuses it.
pub(crate) async fn decode(req: Request, next: Next) -> Response {
    let coding = match coding(req.headers()) {
        Ok(None) => return next.run(req).await,
        Ok(Some(c)) => c,
        Err(e) => return e.into_response(),
    };
    // Intake's largest body is a batch; other routes take up to the general body limit.
    let limit = if crate::error::is_intake(req.uri().path()) { MAX_BATCH_BYTES } else { BODY_LIMIT };
    let (mut parts, body) = req.into_parts();
    let compressed = match to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => return too_large(BODY_LIMIT, "compressed body").into_response(),
    };
    let decoded = match inflate(&compressed, coding, limit) {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    parts.headers.remove(header::CONTENT_ENCODING);
    parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(decoded.len()));
    next.run(Request::from_parts(parts, Body::from(decoded))).await
}

fn coding(headers: &axum::http::HeaderMap) -> Result<Option<Coding>, ApiError> {
    let mut codings = Vec::new();
    for value in headers.get_all(header::CONTENT_ENCODING) {
        let text = value.to_str().map_err(|_| unsupported("a non-ASCII coding"))?;
        for c in text.split(',').map(|c| c.trim().to_ascii_lowercase()).filter(|c| !c.is_empty()) {
            match c.as_str() {
                "identity" => {}
                "gzip" | "x-gzip" => codings.push(Coding::Gzip),
                "deflate" => codings.push(Coding::Deflate),
                other => return Err(unsupported(other)),
            }
        }
    }
    match codings.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        _ => Err(unsupported("more than one coding")),
    }
}

fn unsupported(what: &str) -> ApiError {
    ApiError {
        code: ErrorCode::UnsupportedMediaType,
        detail: format!("Content-Encoding {what} is not supported: send the body as is, gzip or deflate"),
        field: Some("Content-Encoding".into()),
        errors: None,
    }
}

fn too_large(limit: usize, what: &str) -> ApiError {
    ApiError {
        code: ErrorCode::PayloadTooLarge,
        detail: format!("the {what} is over the limit of {} KB: send fewer or smaller events", limit / 1024),
        field: Some("body".into()),
        errors: None,
    }
}

/// Decompresses `data`, reading at most `limit + 1` bytes of output.
fn inflate(data: &[u8], coding: Coding, limit: usize) -> Result<Vec<u8>, ApiError> {
    let reader: Box<dyn Read + '_> = match coding {
        Coding::Gzip => Box::new(MultiGzDecoder::new(data)),
        // RFC 9110's deflate is zlib-wrapped; some clients send raw deflate, told by its header.
        Coding::Deflate if has_zlib_header(data) => Box::new(ZlibDecoder::new(data)),
        Coding::Deflate => Box::new(DeflateDecoder::new(data)),
    };
    let mut out = Vec::with_capacity(data.len().saturating_mul(4).min(limit + 1));
    reader.take(limit as u64 + 1).read_to_end(&mut out).map_err(|e| ApiError {
        code: ErrorCode::InvalidField,
        detail: format!("the body is not valid {}: {e}", if coding == Coding::Gzip { "gzip" } else { "deflate" }),
        field: Some("body".into()),
        errors: None,
    })?;
    if out.len() > limit {
        return Err(too_large(limit, "decompressed body"));
    }
    Ok(out)
}

fn has_zlib_header(data: &[u8]) -> bool {
    match data {
        [cmf, flg, ..] => cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use flate2::Compression;

    use super::*;

    #[test]
    fn gzip_zlib_and_raw_deflate_round_trip_and_a_bomb_stops_at_the_limit() {
        let body = br#"{"userId":"u","event":"E"}"#.repeat(10);
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&body).expect("gzip");
        assert_eq!(inflate(&gz.finish().expect("gzip"), Coding::Gzip, 1024).expect("decode"), body);
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(&body).expect("zlib");
        assert_eq!(inflate(&z.finish().expect("zlib"), Coding::Deflate, 1024).expect("decode"), body);
        let mut raw = DeflateEncoder::new(Vec::new(), Compression::default());
        raw.write_all(&body).expect("deflate");
        assert_eq!(inflate(&raw.finish().expect("deflate"), Coding::Deflate, 1024).expect("decode"), body);
        let mut bomb = GzEncoder::new(Vec::new(), Compression::best());
        bomb.write_all(&vec![b' '; 50 << 20]).expect("bomb");
        let bomb = bomb.finish().expect("bomb");
        assert!(bomb.len() < 100 << 10);
        let e = inflate(&bomb, Coding::Gzip, 500 << 10).expect_err("too large");
        assert_eq!(e.code, ErrorCode::PayloadTooLarge);
        assert_eq!(inflate(b"not gzip", Coding::Gzip, 1024).expect_err("bad").code, ErrorCode::InvalidField);
    }
}
