//! Cursor pagination, the one way every list is read: `limit` and `cursor` in,
//! `{"items": [...], "nextCursor": "..."}` out, `nextCursor` null on the last page.
//! Cursors are opaque strings (base64url): clients pass them back, never build them.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Serialize;

use crate::ApiError;

/// Items per page when `limit` is not given.
pub(crate) const DEFAULT_LIMIT: usize = 100;
/// The most items a page holds.
pub(crate) const MAX_LIMIT: usize = 1000;

/// A page of a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Page<T> {
    /// The items of this page, in the list's order.
    pub(crate) items: Vec<T>,
    /// Pass it as `cursor` to read the next page; null on the last page.
    pub(crate) next_cursor: Option<String>,
}

/// The paging parameters every list takes (for the API documentation; handlers read them with
/// [`PageQuery::from_query`] so a bad value is a problem+json naming the parameter).
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct PageParams {
    /// At most this many items, 1–1000 (default 100).
    limit: Option<usize>,
    /// The `nextCursor` of the previous page; absent for the first page.
    cursor: Option<String>,
}

/// The paging asked for.
#[derive(Debug, Clone)]
pub(crate) struct PageQuery {
    /// Items per page.
    pub(crate) limit: usize,
    /// The position after which to read, decoded; `None` for the first page.
    pub(crate) cursor: Option<String>,
}

impl PageQuery {
    /// Reads `limit` and `cursor` from the query string.
    pub(crate) fn from_query(q: &HashMap<String, String>) -> Result<Self, ApiError> {
        let limit =
            match q.get("limit") {
                None => DEFAULT_LIMIT,
                Some(v) => v.trim().parse::<usize>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
                    ApiError::field("limit", format!("limit is a whole number from 1 to {MAX_LIMIT}"))
                })?,
            };
        let cursor = match q.get("cursor").map(|c| c.trim()).filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => Some(decode(c)?),
        };
        Ok(Self { limit, cursor })
    }

    /// The cursor as a position written by [`cursor_of`] with `tag`, e.g. `s42` → 42.
    pub(crate) fn position(&self, tag: char) -> Result<Option<i64>, ApiError> {
        self.cursor
            .as_deref()
            .map(|c| c.strip_prefix(tag).and_then(|n| n.parse::<i64>().ok()).ok_or_else(bad_cursor))
            .transpose()
    }

    /// The cursor as a text position written by [`cursor_of_text`] with `tag`.
    pub(crate) fn text(&self, tag: char) -> Result<Option<&str>, ApiError> {
        self.cursor.as_deref().map(|c| c.strip_prefix(tag).ok_or_else(bad_cursor)).transpose()
    }

    /// The cursor as a pair of positions written by [`cursor_of_pair`] with `tag`.
    pub(crate) fn pair(&self, tag: char) -> Result<Option<(i64, i64)>, ApiError> {
        self.cursor
            .as_deref()
            .map(|c| {
                c.strip_prefix(tag)
                    .and_then(|rest| rest.split_once('.'))
                    .and_then(|(a, b)| Some((a.parse::<i64>().ok()?, b.parse::<i64>().ok()?)))
                    .ok_or_else(bad_cursor)
            })
            .transpose()
    }

    /// Pages a list held whole (a customer's merges, the models, the keys): the cursor is an
    /// offset into it.
    pub(crate) fn slice<T>(&self, all: Vec<T>) -> Result<Page<T>, ApiError> {
        let offset = self.position('o')?.unwrap_or(0);
        let offset = usize::try_from(offset).map_err(|_| bad_cursor())?;
        let total = all.len();
        let items: Vec<T> = all.into_iter().skip(offset).take(self.limit).collect();
        let end = offset.saturating_add(items.len());
        let next_cursor = (end < total).then(|| cursor_of('o', end as i64));
        Ok(Page { items, next_cursor })
    }

    /// How many items to ask a source for: one more than a page, to know whether another follows.
    pub(crate) fn probe(&self) -> usize {
        self.limit + 1
    }

    /// A page from up to [`PageQuery::probe`] items read after the cursor; `next` writes the
    /// cursor after an item.
    pub(crate) fn cut<T>(&self, mut items: Vec<T>, next: impl Fn(&T) -> String) -> Page<T> {
        let more = items.len() > self.limit;
        items.truncate(self.limit);
        let next_cursor = if more { items.last().map(next) } else { None };
        Page { items, next_cursor }
    }
}

fn bad_cursor() -> ApiError {
    ApiError::field("cursor", "not a cursor of this list: pass the nextCursor of the previous page as it was")
}

fn decode(c: &str) -> Result<String, ApiError> {
    URL_SAFE_NO_PAD.decode(c).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(bad_cursor)
}

/// The opaque cursor for position `n` of kind `tag`.
pub(crate) fn cursor_of(tag: char, n: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{tag}{n}"))
}

/// The opaque cursor for the pair of positions `(a, b)` of kind `tag`.
pub(crate) fn cursor_of_pair(tag: char, a: i64, b: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{tag}{a}.{b}"))
}

/// The opaque cursor for text position `s` (an id) of kind `tag`.
pub(crate) fn cursor_of_text(tag: char, s: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{tag}{s}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Result<PageQuery, ApiError> {
        PageQuery::from_query(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn a_list_held_whole_pages_by_offset_until_the_end() {
        let first = query(&[("limit", "2")]).expect("query").slice(vec![1, 2, 3]).expect("page");
        assert_eq!(first.items, [1, 2]);
        let next = first.next_cursor.expect("a next page");
        let second = query(&[("limit", "2"), ("cursor", &next)]).expect("query").slice(vec![1, 2, 3]).expect("page");
        assert_eq!((second.items, second.next_cursor), (vec![3], None));
    }

    #[test]
    fn bad_limits_and_cursors_name_their_parameter() {
        for (k, v) in [("limit", "0"), ("limit", "1001"), ("limit", "x"), ("cursor", "!!"), ("cursor", "eDQy")] {
            let q = query(&[(k, v)]).and_then(|q| q.position('s').map(|_| q));
            assert_eq!(q.err().and_then(|e| e.field).as_deref(), Some(k), "{k}={v}");
        }
        assert_eq!(
            query(&[("cursor", &cursor_of_pair('t', -5, 3))]).expect("q").pair('t').expect("pair"),
            Some((-5, 3))
        );
    }

    #[test]
    fn a_source_read_one_past_the_page_says_whether_more_follow() {
        let q = query(&[("limit", "2")]).expect("query");
        let page = q.cut(vec![5, 6, 7], |n| cursor_of('s', *n));
        assert_eq!((page.items, page.next_cursor), (vec![5, 6], Some(cursor_of('s', 6))));
        let last = q.cut(vec![8, 9], |n| cursor_of('s', *n));
        assert_eq!(last.next_cursor, None);
    }
}
