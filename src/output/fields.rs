//! Field selection: `--fields` and `--page-fields` choose and order the
//! columns of each output (Scrapy's `FEED_EXPORT_FIELDS`).

use super::{INLINE_TEXT_COLUMN, PAGE_COLUMNS, SCRIPT_COLUMNS};

/// The columns an output holds, in the order written: a selection from
/// the output's own columns, each at most once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fields(Vec<&'static str>);

impl Fields {
    /// `names` as they are (already checked).
    pub fn of(names: &[&'static str]) -> Fields {
        Fields(names.to_vec())
    }

    /// Reads a comma-separated list of names, each one of `valid`: an
    /// unknown, repeated or missing name is an error that lists the valid
    /// ones.
    pub fn parse(list: &str, valid: &[&'static str]) -> Result<Fields, String> {
        let mut names: Vec<&'static str> = Vec::new();
        for name in list.split(',').map(str::trim) {
            if name.is_empty() {
                return Err(format!(
                    "an empty field name in {list:?}; valid fields: {}",
                    valid.join(",")
                ));
            }
            let Some(&known) = valid.iter().find(|v| **v == name) else {
                return Err(format!(
                    "unknown field {name:?}; valid fields: {}",
                    valid.join(",")
                ));
            };
            if names.contains(&known) {
                return Err(format!("field {name:?} is named twice"));
            }
            names.push(known);
        }
        Ok(Fields(names))
    }

    /// The column names, in order.
    pub fn names(&self) -> &[&'static str] {
        &self.0
    }

    /// Whether the output holds column `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains(&name)
    }

    /// The names of `needed` that the output does not hold.
    pub fn missing<'a>(&self, needed: &[&'a str]) -> Vec<&'a str> {
        needed
            .iter()
            .copied()
            .filter(|n| !self.contains(n))
            .collect()
    }
}

/// Every column the scripts output can hold: [`SCRIPT_COLUMNS`] and
/// [`INLINE_TEXT_COLUMN`].
pub fn all_script_columns() -> &'static [&'static str] {
    super::script_columns(true)
}

/// `--fields`'s parser.
pub fn parse_script_fields(list: &str) -> Result<Fields, String> {
    debug_assert_eq!(all_script_columns().len(), SCRIPT_COLUMNS.len() + 1);
    debug_assert_eq!(all_script_columns().last(), Some(&INLINE_TEXT_COLUMN));
    Fields::parse(list, all_script_columns())
}

/// `--page-fields`'s parser.
pub fn parse_page_fields(list: &str) -> Result<Fields, String> {
    Fields::parse(list, &PAGE_COLUMNS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_read_in_the_order_given() {
        let f = parse_script_fields("src, page_url,inline_text").unwrap();
        assert_eq!(f.names(), ["src", "page_url", "inline_text"]);
        assert_eq!(f.missing(&["page_url", "index"]), ["index"]);
        assert_eq!(
            parse_page_fields("status,page_url").unwrap().names(),
            ["status", "page_url"]
        );
    }

    #[test]
    fn bad_lists_say_what_is_valid() {
        let err = parse_script_fields("page_url,scr").unwrap_err();
        assert!(
            err.starts_with("unknown field \"scr\"; valid fields: page_url,final_url,"),
            "{err}"
        );
        assert!(
            err.ends_with(",content_sha384,origin,initiator,frame_url,inline_text"),
            "{err}"
        );
        assert!(!err.contains('\n'));
        // A page column is not a scripts column.
        assert!(parse_script_fields("elapsed_ms").is_err());
        assert!(
            parse_page_fields("src")
                .unwrap_err()
                .contains("valid fields: page_url,")
        );
        assert_eq!(
            parse_script_fields("src,src").unwrap_err(),
            "field \"src\" is named twice"
        );
        assert!(
            parse_script_fields("src,,index")
                .unwrap_err()
                .starts_with("an empty field")
        );
        assert!(parse_script_fields("").is_err());
    }
}
