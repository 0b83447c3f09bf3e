//! Lists that say when there is more: a page of an offset list that rows follow answers
//! with `Link: <…?offset=…&limit=…>; rel="next"` (RFC 8288), so that no list is silently
//! cut short. (Lists whose order new rows could shift — the chain, `$everything` — page by
//! cursor instead.)

use axum::http::{header, HeaderValue, Uri};
use axum::response::{IntoResponseParts, ResponseParts};
use medchain_records::query::{Page, Paged, RecordCursor, MAX_PAGE};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{ApiError, ApiResult};

/// `?offset=&limit=` of an offset list.
#[derive(Debug, Clone, Copy, Default, Deserialize, IntoParams)]
pub struct PageParams {
    /// Rows to skip.
    pub offset: Option<u32>,
    /// Rows to return (1 to 200, default 50).
    pub limit: Option<u32>,
}

impl PageParams {
    pub fn page(self) -> Page {
        Page {
            offset: self.offset.unwrap_or(0),
            limit: self.limit.unwrap_or(50).clamp(1, MAX_PAGE),
        }
    }
}

/// The `Link` header of the next page, if the page is not the last.
#[derive(Debug, Clone, Default)]
pub struct NextLink(Option<HeaderValue>);

impl NextLink {
    /// The next page after `page` of the list at `uri`, when `more` rows follow it. The
    /// request's other query parameters are kept as they were sent (still encoded).
    pub fn after(uri: &Uri, page: PageParams, more: bool) -> Self {
        if !more {
            return NextLink(None);
        }
        let page = page.page();
        let kept: Vec<&str> = uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("offset=") && !p.starts_with("limit="))
            .collect();
        let mut query = kept.join("&");
        if !query.is_empty() {
            query.push('&');
        }
        let next_offset = page.offset.saturating_add(page.limit);
        query.push_str(&format!("offset={next_offset}&limit={}", page.limit));
        let link = format!("<{}?{query}>; rel=\"next\"", uri.path());
        NextLink(HeaderValue::from_str(&link).ok())
    }
}

/// The `cursor` field of a cursor-paged request: absent (the first page), or a
/// `next_cursor` this API wrote (422 naming the field otherwise).
pub fn record_cursor(cursor: Option<&str>) -> ApiResult<Option<RecordCursor>> {
    cursor
        .map(|c| {
            RecordCursor::parse(c).ok_or_else(|| {
                ApiError::invalid("cursor: pass back a next_cursor unchanged").with_field("cursor")
            })
        })
        .transpose()
}

/// The `Link` header for a page of `list`.
pub fn next_of<T>(uri: &Uri, page: PageParams, list: &Paged<T>) -> NextLink {
    NextLink::after(uri, page, list.more)
}

impl IntoResponseParts for NextLink {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        if let Some(v) = self.0 {
            res.headers_mut().insert(header::LINK, v);
        }
        Ok(res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(uri: &str, offset: Option<u32>, limit: Option<u32>, more: bool) -> Option<String> {
        let uri: Uri = uri.parse().expect("uri");
        NextLink::after(&uri, PageParams { offset, limit }, more)
            .0
            .map(|v| v.to_str().expect("ascii").to_string())
    }

    #[test]
    fn the_last_page_announces_nothing() {
        assert_eq!(link("/api/audit", None, None, false), None);
    }

    #[test]
    fn the_next_page_keeps_the_other_parameters_and_moves_the_offset() {
        assert_eq!(
            link(
                "/api/users?role=doctor&search=ok%20a&offset=50&limit=50",
                Some(50),
                Some(50),
                true
            )
            .as_deref(),
            Some("</api/users?role=doctor&search=ok%20a&offset=100&limit=50>; rel=\"next\"")
        );
        assert_eq!(
            link("/api/audit", None, None, true).as_deref(),
            Some("</api/audit?offset=50&limit=50>; rel=\"next\"")
        );
    }

    #[test]
    fn a_limit_out_of_range_is_announced_as_served() {
        assert_eq!(
            link("/api/audit?limit=5000", None, Some(5000), true).as_deref(),
            Some("</api/audit?offset=200&limit=200>; rel=\"next\"")
        );
    }
}
