//! List pagination as the API offers it: `?limit=` and `?starting_after=`.

/// Page size when none is asked for.
pub const DEFAULT_LIMIT: u32 = 50;
/// The largest page a client may ask for.
pub const MAX_LIMIT: u32 = 200;

/// A validated page request: newest first, after the object named by `starting_after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// How many objects at most.
    pub limit: u32,
    /// The id of the last object of the previous page, if any.
    pub starting_after: Option<String>,
}

/// Why a page request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("limit must be between 1 and {MAX_LIMIT}")]
pub struct InvalidLimit;

impl PageRequest {
    /// Validates a raw `limit` (absent → [`DEFAULT_LIMIT`]).
    pub fn new(limit: Option<i64>, starting_after: Option<String>) -> Result<Self, InvalidLimit> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(l) if (1..=MAX_LIMIT as i64).contains(&l) => l as u32,
            Some(_) => return Err(InvalidLimit),
        };
        Ok(Self {
            limit,
            starting_after: starting_after.filter(|s| !s.is_empty()),
        })
    }
}

/// One page of results and whether more follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The objects, newest first.
    pub data: Vec<T>,
    /// Whether another page follows this one.
    pub has_more: bool,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched newest first: the extra row only
    /// tells that more exist.
    pub fn from_overfetch(mut rows: Vec<T>, limit: u32) -> Self {
        let has_more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        Page {
            data: rows,
            has_more,
        }
    }

    /// Maps every object of the page.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            data: self.data.into_iter().map(f).collect(),
            has_more: self.has_more,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_and_bound() {
        assert_eq!(PageRequest::new(None, None).unwrap().limit, 50);
        assert_eq!(PageRequest::new(Some(200), None).unwrap().limit, 200);
        assert!(PageRequest::new(Some(0), None).is_err());
        assert!(PageRequest::new(Some(201), None).is_err());
    }

    #[test]
    fn overfetch_tells_whether_more_follow() {
        let p = Page::from_overfetch(vec![1, 2, 3], 2);
        assert_eq!(p.data, vec![1, 2]);
        assert!(p.has_more);
        let p = Page::from_overfetch(vec![1, 2], 2);
        assert!(!p.has_more);
    }
}
