//! Reading a `--format parquet` output back, for `diff` and `inventory`:
//! each row as the JSON Lines object of the same run would be (the same
//! keys, texts, integers, booleans and nulls), so that the rest of the
//! reader has one typed shape to handle.

use std::fs::File;
use std::io::{self, Read};

use anyhow::{Context as _, bail};
use parquet::file::reader::{FileReader as _, SerializedFileReader};
use parquet::record::Field;
use serde_json::{Map, Value};

/// A Parquet file starts (and ends) with these bytes.
pub(super) const MAGIC: &[u8] = b"PAR1";

/// Calls `each` on every row of the Parquet file at `path`, after asking
/// `refusal`, given the file's columns, whether it can be read. `source` is
/// the file already opened, or standard input (`-`), which is copied to a
/// temporary file first: a Parquet reader starts from the end.
pub(super) fn each_row(
    path: &str,
    mut source: impl Read,
    refusal: impl Fn(&[String]) -> Option<String>,
    mut each: impl FnMut(&Map<String, Value>) -> anyhow::Result<()>,
) -> anyhow::Result<bool> {
    let file = if path == "-" {
        // Removed by the OS however the process ends.
        let mut spool = tempfile::tempfile().context("cannot buffer standard input")?;
        io::copy(&mut source, &mut spool).context("cannot read standard input")?;
        spool
    } else {
        File::open(path).with_context(|| format!("cannot read {path}"))?
    };
    let reader = SerializedFileReader::new(file).map_err(|e| {
        anyhow::anyhow!(
            "{path}: not a complete Parquet file ({e}); a run stopped by a kill leaves its .part \
             without the footer readers need"
        )
    })?;
    let columns: Vec<String> = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .root_schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_owned())
        .collect();
    if let Some(why) = refusal(&columns) {
        bail!("{path}: {why}");
    }
    let rows = reader
        .get_row_iter(None)
        .with_context(|| format!("cannot read {path}"))?;
    let mut map = Map::with_capacity(columns.len());
    for (n, row) in rows.enumerate() {
        let at = || format!("{path} row {}", n + 1);
        let row = row.with_context(at)?;
        map.clear();
        for (name, field) in row.get_column_iter() {
            map.insert(name.clone(), value(name, field).with_context(at)?);
        }
        each(&map).with_context(at)?;
    }
    // Like a CSV header, the schema is there even with no rows.
    Ok(true)
}

/// A field as JSON Lines writes the same value.
fn value(name: &str, field: &Field) -> anyhow::Result<Value> {
    Ok(match field {
        Field::Null => Value::Null,
        Field::Bool(b) => Value::Bool(*b),
        Field::Str(s) => Value::String(s.clone()),
        Field::Long(n) => Value::from(*n),
        // Integers of other widths, as another writer may have narrowed
        // them (a file converted by DuckDB or pandas).
        Field::Int(n) => Value::from(*n),
        Field::Short(n) => Value::from(*n),
        Field::Byte(n) => Value::from(*n),
        Field::UInt(n) => Value::from(*n),
        Field::ULong(n) => Value::from(*n),
        Field::UShort(n) => Value::from(*n),
        Field::UByte(n) => Value::from(*n),
        other => bail!("column {name} holds {other}, not a value scriptscrape writes"),
    })
}
