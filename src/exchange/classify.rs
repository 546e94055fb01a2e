//! Answers that are not the exchange's own words: block pages of the CDN or
//! WAF in front of it, told apart from rate bans.
//!
//! A geo-block or WAF block answers 403 like an IP rate ban (Bybit documents
//! 403 for both, `docs/v5/error.mdx` "HTTP Code"), but it is a different
//! diagnosis: waiting does not lift it and slowing down does not help; the
//! egress IP, its region or the VPN must change. So a recognized block page
//! becomes [`ApiError::Blocked`], which holds no limiter and opens no ban.
//! Each adapter's own error codes are classified in its file; the tables with
//! sources are in `docs/adapters.md`.

use super::RawResponse;
use crate::model::ApiError;

/// The sentence of CloudFront's geo-restriction page, as quoted from real
/// 403 answers: hummingbot/deploy#28 (api.binance.us) and
/// sammchardy/python-binance#1413; Bybit's API is behind CloudFront too
/// (PipedreamHQ/pipedream#5641, sieblyio/bybit-api#380).
pub const CLOUDFRONT_GEO: &str =
    "The Amazon CloudFront distribution is configured to block access from your country";

/// The title of Cloudflare's access-denied page ("Access denied | <host>
/// used Cloudflare to restrict access", bitsoex/front-end-challenge#10).
pub const CLOUDFLARE_DENIED: &str = "used Cloudflare to restrict access";

/// A CDN's block page, if the body is one: CloudFront's geo-restriction
/// page or Cloudflare's access-denied page, on a 4xx. `None` for anything
/// else, so an exchange's own 403 (Bybit's "access too frequent") keeps its
/// meaning.
pub fn cdn_block(resp: &RawResponse<'_>) -> Option<ApiError> {
    if !(400..500).contains(&resp.status) {
        return None;
    }
    // Block pages are small; do not scan a large body for them.
    let head = &resp.body[..resp.body.len().min(16 * 1024)];
    let text = String::from_utf8_lossy(head);
    let lower = text.to_ascii_lowercase();
    if lower.contains(&CLOUDFRONT_GEO.to_ascii_lowercase()) {
        return Some(ApiError::Blocked {
            by: "CloudFront".into(),
            message: format!("HTTP {}: {CLOUDFRONT_GEO}", resp.status),
        });
    }
    if lower.contains(&CLOUDFLARE_DENIED.to_ascii_lowercase()) {
        return Some(ApiError::Blocked {
            by: "Cloudflare".into(),
            message: format!(
                "HTTP {}: access denied, the site {CLOUDFLARE_DENIED}",
                resp.status
            ),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;

    fn resp<'a>(status: u16, h: &'a HeaderMap, body: &'a [u8]) -> RawResponse<'a> {
        RawResponse {
            status,
            headers: h,
            body,
            received_at_ms: 0,
            elapsed_ms: 0,
            requested_symbol: None,
        }
    }

    #[test]
    fn block_pages_are_recognized_only_as_block_pages() {
        let h = HeaderMap::new();
        let geo = format!("<H1>403 ERROR</H1>\n{CLOUDFRONT_GEO}.\n");
        assert!(matches!(
            cdn_block(&resp(403, &h, geo.as_bytes())),
            Some(ApiError::Blocked { by, .. }) if by == "CloudFront"
        ));
        let cf =
            "<title>Access denied | api.example.com used Cloudflare to restrict access</title>";
        assert!(matches!(
            cdn_block(&resp(403, &h, cf.as_bytes())),
            Some(ApiError::Blocked { by, .. }) if by == "Cloudflare"
        ));
        // The same words in a healthy answer or a rate ban are not a block.
        assert_eq!(cdn_block(&resp(200, &h, geo.as_bytes())), None);
        assert_eq!(cdn_block(&resp(403, &h, b"access too frequent")), None);
        assert_eq!(cdn_block(&resp(403, &h, b"")), None);
    }
}
