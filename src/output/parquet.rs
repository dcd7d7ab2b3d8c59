//! `--format parquet`: the outputs as Apache Parquet files, typed as the
//! JSON Lines values are, for loading into DuckDB, BigQuery, Spark or
//! pandas without a parsing step.
//!
//! A Parquet file is a series of row groups followed by a footer that
//! describes them; a reader starts from the footer. Rows are buffered here,
//! column by column, and written as a row group once enough have gathered,
//! always at the end of a page (a page's rows are never split between row
//! groups), so memory stays bounded whatever the run's size. The footer is
//! written when the table is finished, by a complete run and by one that
//! was stopped (its `.part` file is then readable too); a run killed
//! outright leaves a `.part` without a footer, which no reader can open,
//! and which is why `--resume` and `collect` refuse Parquet.
//!
//! The schema is built from the column names the table is given (so that a
//! choice or order of columns gives a schema to match); each column's type,
//! repetition and field id come from [`column`], a stable interface: the
//! field id is the column's position in its output's full list, and columns
//! are only ever appended.

use std::io;
use std::sync::Arc;

use parquet::basic::{Compression, ConvertedType, LogicalType, Repetition, Type as Physical};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, Int64Type};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;

use super::{Cell, INLINE_TEXT_COLUMN, PAGE_COLUMNS, SCRIPT_COLUMNS, Target};

/// Rows buffered before a row group is written (checked at each page's
/// end). DuckDB's writer uses 122,880 rows a group by default; groups of
/// this size are what readers split work by, and each keeps its own
/// statistics and dictionaries, so much smaller ones compress worse and
/// read slower.
pub(crate) const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Bytes of values buffered before a row group is written, whatever the
/// row count: the memory bound when rows are large (`--inline-text`). A
/// page's rows all go into one group, so a group may pass it by one page.
pub(crate) const ROW_GROUP_BYTES: usize = 32 << 20;

/// Values converted into the writer's form at a time when a row group is
/// written: bounds that copy.
const WRITE_CHUNK: usize = 4096;

/// The zstd level: 3 is zstd's own default, a good ratio at a speed well
/// above the rate rows are produced.
const ZSTD_LEVEL: i32 = 3;

/// Which output a table is: sets the field ids and the file's metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Output {
    /// The scripts output (`-o`).
    Scripts,
    /// The scripts output of a `--render` run, whose rows of scripts that
    /// are no element of the fetched HTML have no element flags
    /// ([`ELEMENT_ONLY`]).
    RenderedScripts,
    /// The page report (`--pages`).
    Pages,
}

impl Output {
    /// As the file's `scriptscrape.output` metadata says it.
    fn name(self) -> &'static str {
        match self {
            Output::Scripts | Output::RenderedScripts => "scripts",
            Output::Pages => "pages",
        }
    }
}

/// The kind of value a column holds, as [`Cell`] carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// UTF-8 text: BYTE_ARRAY annotated String.
    Str,
    /// INT64 (signed, as BigQuery and Java have no unsigned 64-bit type;
    /// every count and status fits).
    Int,
    /// BOOLEAN.
    Bool,
}

/// One column's Parquet definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Column {
    pub kind: Kind,
    /// Never null (REQUIRED); otherwise OPTIONAL, null where JSON Lines
    /// writes null.
    pub required: bool,
    /// The column's position in its output's full list.
    pub id: i32,
}

/// Each column's kind, and whether it is never null, as `Sink` writes them
/// (`write_scripts`: the attributes and flags always present are REQUIRED;
/// with `--render`, see [`ELEMENT_ONLY`]).
const SCRIPT_KINDS: [(&str, Kind, bool); SCRIPT_COLUMNS.len() + 1] = [
    ("page_url", Kind::Str, true),
    ("final_url", Kind::Str, false),
    ("index", Kind::Int, true),
    ("src", Kind::Str, false),
    ("inline", Kind::Bool, true),
    ("type", Kind::Str, false),
    ("async", Kind::Bool, true),
    ("defer", Kind::Bool, true),
    ("nomodule", Kind::Bool, true),
    ("integrity", Kind::Str, false),
    // Null when the attribute is absent, "" when written without a value:
    // not the same thing to a browser (anonymous vs no CORS).
    ("crossorigin", Kind::Str, false),
    ("inline_bytes", Kind::Int, false),
    ("inline_sha256", Kind::Str, false),
    ("src_resolved", Kind::Bool, false),
    ("svg", Kind::Bool, true),
    ("host", Kind::Str, false),
    ("third_party", Kind::Bool, true),
    ("position", Kind::Str, true),
    ("nonce_present", Kind::Bool, true),
    ("csp_allowed", Kind::Bool, false),
    ("integrity_ok", Kind::Bool, false),
    ("content_status", Kind::Int, false),
    ("content_error", Kind::Str, false),
    ("content_bytes", Kind::Int, false),
    ("content_sha384", Kind::Str, false),
    ("origin", Kind::Str, false),
    ("initiator", Kind::Str, false),
    ("frame_url", Kind::Str, false),
    (INLINE_TEXT_COLUMN, Kind::Str, false),
];

/// The REQUIRED columns a `--render` run leaves null on the rows of
/// scripts that are no element of the fetched HTML: OPTIONAL in its
/// files only, so that the schema of other runs' files stays as it was
/// (a warehouse table made from them keeps loading them).
const ELEMENT_ONLY: [&str; 6] = [
    "async",
    "defer",
    "nomodule",
    "svg",
    "position",
    "nonce_present",
];

/// As [`SCRIPT_KINDS`], for the page report (`write_report`).
const PAGE_KINDS: [(&str, Kind, bool); PAGE_COLUMNS.len()] = [
    ("page_url", Kind::Str, true),
    ("final_url", Kind::Str, false),
    ("status", Kind::Int, false),
    ("error", Kind::Str, false),
    ("scripts", Kind::Int, true),
    ("bytes", Kind::Int, true),
    ("elapsed_ms", Kind::Int, true),
    ("error_detail", Kind::Str, false),
    ("charset", Kind::Str, false),
    ("attempts", Kind::Int, true),
    ("depth", Kind::Int, true),
    ("referrer", Kind::Str, false),
    ("csp", Kind::Str, false),
];

/// The Parquet definition of the column `name` of `output`; `None` for a
/// name the output does not have.
pub(crate) fn column(output: Output, name: &str) -> Option<Column> {
    let kinds: &[(&str, Kind, bool)] = match output {
        Output::Scripts | Output::RenderedScripts => &SCRIPT_KINDS,
        Output::Pages => &PAGE_KINDS,
    };
    // The lists are in column order (a unit test checks), so the position
    // is the field id.
    let (id, &(_, kind, required)) = kinds.iter().enumerate().find(|(_, c)| c.0 == name)?;
    let element_only = output == Output::RenderedScripts && ELEMENT_ONLY.contains(&name);
    Some(Column {
        kind,
        required: required && !element_only,
        id: i32::try_from(id).ok()?,
    })
}

/// The file schema for `columns` of `output`, in that order.
pub(crate) fn schema(output: Output, columns: &[&str]) -> io::Result<Type> {
    let mut fields = Vec::with_capacity(columns.len());
    for name in columns {
        let c = column(output, name).ok_or_else(|| {
            io::Error::other(format!(
                "no column {name:?} in the {} output",
                output.name()
            ))
        })?;
        let physical = match c.kind {
            Kind::Str => Physical::BYTE_ARRAY,
            Kind::Int => Physical::INT64,
            Kind::Bool => Physical::BOOLEAN,
        };
        let mut field = Type::primitive_type_builder(name, physical)
            .with_repetition(if c.required {
                Repetition::REQUIRED
            } else {
                Repetition::OPTIONAL
            })
            .with_id(Some(c.id));
        if c.kind == Kind::Str {
            // Both annotations: the logical type for current readers, the
            // converted type for older ones.
            field = field
                .with_logical_type(Some(LogicalType::String))
                .with_converted_type(ConvertedType::UTF8);
        }
        fields.push(Arc::new(field.build().map_err(io_error)?));
    }
    Type::group_type_builder(&format!("scriptscrape_{}", output.name()))
        .with_fields(fields)
        .build()
        .map_err(io_error)
}

/// A Parquet error as the I/O error under it when there is one, so that a
/// closed pipe is still told from a full disk (and says so plainly), or as
/// an error of its own.
fn io_error(err: parquet::errors::ParquetError) -> io::Error {
    match err {
        parquet::errors::ParquetError::External(inner) => match inner.downcast::<io::Error>() {
            Ok(io) => *io,
            Err(other) => io::Error::other(other),
        },
        other => io::Error::other(other),
    }
}

/// One column's values of the row group being gathered.
enum Values {
    /// Texts end to end, with where each ends: one allocation for the
    /// column rather than one per value.
    Str {
        data: Vec<u8>,
        ends: Vec<usize>,
    },
    Int(Vec<i64>),
    Bool(Vec<bool>),
}

/// One column of the row group being gathered.
struct Buffer {
    name: &'static str,
    required: bool,
    values: Values,
    /// Definition levels of an OPTIONAL column: 1 for a value, 0 for a
    /// null (which has no entry in `values`). Empty for a REQUIRED one.
    levels: Vec<i16>,
}

impl Buffer {
    fn clear(&mut self) {
        match &mut self.values {
            Values::Str { data, ends } => {
                data.clear();
                ends.clear();
                // A group with huge texts should not pin its memory.
                data.shrink_to(1 << 20);
            }
            Values::Int(v) => v.clear(),
            Values::Bool(v) => v.clear(),
        }
        self.levels.clear();
    }

    /// Whether `cell` can go in this column: its kind, or a null in an
    /// OPTIONAL column.
    fn check(&self, cell: &Cell<'_>) -> io::Result<()> {
        let fits = match (cell, &self.values) {
            (Cell::Null, _) => !self.required,
            (Cell::Str(_), Values::Str { .. })
            | (Cell::Int(_), Values::Int(_))
            | (Cell::Bool(_), Values::Bool(_)) => true,
            _ => false,
        };
        if fits {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "Parquet column {} cannot hold {cell:?}: a bug in its schema",
                    self.name
                ),
            ))
        }
    }

    /// Appends a cell [`Buffer::check`] accepted; returns the bytes it
    /// holds in memory.
    fn push(&mut self, cell: &Cell<'_>) -> usize {
        let defined = !matches!(cell, Cell::Null);
        if !self.required {
            self.levels.push(i16::from(defined));
        }
        match (cell, &mut self.values) {
            (Cell::Str(s), Values::Str { data, ends }) => {
                data.extend_from_slice(s.as_bytes());
                ends.push(data.len());
                s.len() + 8
            }
            // An elapsed time saturated at u64::MAX is the one value that
            // would not fit; it stays the largest value the type has.
            (Cell::Int(n), Values::Int(v)) => {
                v.push(i64::try_from(*n).unwrap_or(i64::MAX));
                8
            }
            (Cell::Bool(b), Values::Bool(v)) => {
                v.push(*b);
                1
            }
            // A null (nothing but its level), or a mismatch `check` refused.
            _ => 2,
        }
    }

    /// Writes the column's values to the row group's next column.
    fn write(
        &self,
        writer: &mut parquet::file::writer::SerializedColumnWriter<'_>,
    ) -> io::Result<()> {
        let levels = (!self.required).then_some(&self.levels[..]);
        let written = match &self.values {
            Values::Str { data, ends } => {
                let typed = writer.typed::<ByteArrayType>();
                let mut start = 0;
                let mut chunk = Vec::with_capacity(WRITE_CHUNK.min(ends.len()));
                // The levels go in chunks beside their values: each chunk
                // of levels covers the values that are defined in it.
                let mut level_at = 0;
                let mut written = 0;
                let total_levels = levels.map_or(ends.len(), <[i16]>::len);
                // Bounded: each turn consumes at least one level.
                while level_at < total_levels {
                    let level_end = (level_at + WRITE_CHUNK).min(total_levels);
                    let chunk_levels = levels.map(|l| &l[level_at..level_end]);
                    let defined = chunk_levels.map_or(level_end - level_at, |l| {
                        l.iter().filter(|&&d| d == 1).count()
                    });
                    chunk.clear();
                    for &end in &ends[written..written + defined] {
                        chunk.push(ByteArray::from(data[start..end].to_vec()));
                        start = end;
                    }
                    typed
                        .write_batch(&chunk, chunk_levels, None)
                        .map_err(io_error)?;
                    written += defined;
                    level_at = level_end;
                }
                written
            }
            Values::Int(v) => writer
                .typed::<Int64Type>()
                .write_batch(v, levels, None)
                .map_err(io_error)?,
            Values::Bool(v) => writer
                .typed::<BoolType>()
                .write_batch(v, levels, None)
                .map_err(io_error)?,
        };
        let expected = match &self.values {
            Values::Str { ends, .. } => ends.len(),
            Values::Int(v) => v.len(),
            Values::Bool(v) => v.len(),
        };
        if written != expected {
            return Err(io::Error::other(format!(
                "Parquet column {}: {written} values written of {expected}",
                self.name
            )));
        }
        Ok(())
    }
}

/// An output written as Parquet: rows gathered by column, written as row
/// groups at page ends, the footer at the end.
pub(crate) struct ParquetTable {
    writer: SerializedFileWriter<Target>,
    columns: Vec<Buffer>,
    /// Rows gathered for the next row group.
    rows: usize,
    /// Bytes they hold in memory, roughly (values and their offsets).
    bytes: usize,
    /// Rows before a row group is written at a page end.
    max_rows: usize,
    /// Bytes before a row group is written at a page end.
    max_bytes: usize,
}

impl ParquetTable {
    /// Starts the file (its magic bytes) on `dest`.
    pub(crate) fn new(dest: Target, output: Output, columns: &[&'static str]) -> io::Result<Self> {
        Self::with_bounds(dest, output, columns, ROW_GROUP_ROWS, ROW_GROUP_BYTES)
    }

    /// As [`ParquetTable::new`], with row groups of other bounds (tests).
    pub(crate) fn with_bounds(
        dest: Target,
        output: Output,
        columns: &[&'static str],
        max_rows: usize,
        max_bytes: usize,
    ) -> io::Result<Self> {
        let schema = Arc::new(schema(output, columns)?);
        let zstd = parquet::basic::ZstdLevel::try_new(ZSTD_LEVEL).map_err(io_error)?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(zstd))
            // page_url, host, type and the flags repeat a lot.
            .set_dictionary_enabled(true)
            .set_key_value_metadata(Some(vec![
                KeyValue::new(
                    "scriptscrape.version".to_owned(),
                    env!("CARGO_PKG_VERSION").to_owned(),
                ),
                KeyValue::new("scriptscrape.output".to_owned(), output.name().to_owned()),
            ]))
            .build();
        let writer = SerializedFileWriter::new(dest, schema.clone(), Arc::new(properties))
            .map_err(io_error)?;
        let columns = columns
            .iter()
            .map(|&name| {
                // `schema` found every name.
                let c = column(output, name).ok_or_else(|| io::Error::other("no such column"))?;
                let values = match c.kind {
                    Kind::Str => Values::Str {
                        data: Vec::new(),
                        ends: Vec::new(),
                    },
                    Kind::Int => Values::Int(Vec::new()),
                    Kind::Bool => Values::Bool(Vec::new()),
                };
                Ok(Buffer {
                    name,
                    required: c.required,
                    values,
                    levels: Vec::new(),
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(ParquetTable {
            writer,
            columns,
            rows: 0,
            bytes: 0,
            max_rows,
            max_bytes,
        })
    }

    /// Adds one row (cells in column order) to the row group being
    /// gathered. A row that does not fit the schema is refused whole.
    pub(crate) fn row(&mut self, cells: &[Cell<'_>]) -> io::Result<()> {
        if cells.len() != self.columns.len() {
            return Err(io::Error::other(format!(
                "a row of {} values for {} Parquet columns",
                cells.len(),
                self.columns.len()
            )));
        }
        for (buffer, cell) in self.columns.iter().zip(cells) {
            buffer.check(cell)?;
        }
        for (buffer, cell) in self.columns.iter_mut().zip(cells) {
            self.bytes += buffer.push(cell);
        }
        self.rows += 1;
        Ok(())
    }

    /// The end of a page: writes a row group if enough rows have gathered.
    pub(crate) fn commit(&mut self) -> io::Result<()> {
        if self.rows >= self.max_rows || self.bytes >= self.max_bytes {
            self.write_row_group()?;
        }
        Ok(())
    }

    /// Writes the rows gathered as one row group, and flushes it to the
    /// destination.
    fn write_row_group(&mut self) -> io::Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let mut group = self.writer.next_row_group().map_err(io_error)?;
        for buffer in &self.columns {
            let Some(mut column) = group.next_column().map_err(io_error)? else {
                return Err(io::Error::other("fewer Parquet columns than the schema's"));
            };
            buffer.write(&mut column)?;
            column.close().map_err(io_error)?;
        }
        group.close().map_err(io_error)?;
        self.writer.flush()?;
        for buffer in &mut self.columns {
            buffer.clear();
        }
        self.rows = 0;
        self.bytes = 0;
        Ok(())
    }

    /// The destination, for syncing what was written so far.
    pub(crate) fn target(&self) -> &Target {
        self.writer.inner()
    }

    /// Writes the last row group and the footer, and hands back the
    /// destination.
    pub(crate) fn into_target(mut self) -> io::Result<Target> {
        self.write_row_group()?;
        self.writer.into_inner().map_err(io_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{PAGE_COLUMNS, SCRIPT_COLUMNS, script_columns};

    #[test]
    fn every_column_of_both_outputs_has_a_definition_in_order() {
        for (output, names) in [
            (Output::Scripts, script_columns(true)),
            (Output::Pages, &PAGE_COLUMNS[..]),
        ] {
            for (i, name) in names.iter().enumerate() {
                let c = column(output, name).unwrap_or_else(|| panic!("no type for {name}"));
                assert_eq!(c.id, i as i32, "{name}: the field id is its position");
            }
            let kinds: &[(&str, Kind, bool)] = match output {
                Output::Scripts | Output::RenderedScripts => &SCRIPT_KINDS,
                Output::Pages => &PAGE_KINDS,
            };
            assert_eq!(
                kinds.len(),
                names.len(),
                "no definition of a column that is gone"
            );
        }
        assert_eq!(column(Output::Scripts, INLINE_TEXT_COLUMN).unwrap().id, 28);
        assert_eq!(SCRIPT_COLUMNS.len(), 28);
        assert!(column(Output::Pages, "src").is_none());
        // A --render run's element flags may be null; other runs' never.
        for name in ELEMENT_ONLY {
            assert!(column(Output::Scripts, name).unwrap().required, "{name}");
            assert!(!column(Output::RenderedScripts, name).unwrap().required);
        }
        assert_eq!(
            column(Output::RenderedScripts, "origin"),
            column(Output::Scripts, "origin")
        );
        // The names both outputs have are defined alike.
        for name in ["page_url", "final_url"] {
            assert_eq!(column(Output::Scripts, name), column(Output::Pages, name));
        }
    }

    fn table(output: Output, columns: &[&'static str]) -> (tempfile::TempDir, ParquetTable) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.parquet");
        let target = Target::open(&crate::output::Destination::File(path), false).unwrap();
        let table = ParquetTable::with_bounds(target, output, columns, 3, 1 << 20).unwrap();
        (dir, table)
    }

    #[test]
    fn a_null_in_a_required_column_is_an_error_and_the_row_is_refused_whole() {
        let (_dir, mut t) = table(Output::Pages, &["page_url", "final_url", "scripts"]);
        t.row(&[Cell::Str("a"), Cell::Null, Cell::Int(1)]).unwrap();
        let err = t
            .row(&[Cell::Str("b"), Cell::Str("c"), Cell::Null])
            .unwrap_err();
        assert!(err.to_string().contains("column scripts"), "{err}");
        let err = t.row(&[Cell::Null, Cell::Null, Cell::Int(2)]).unwrap_err();
        assert!(err.to_string().contains("column page_url"), "{err}");
        // A value of another kind.
        let err = t
            .row(&[Cell::Str("b"), Cell::Bool(true), Cell::Int(2)])
            .unwrap_err();
        assert!(err.to_string().contains("column final_url"), "{err}");
        // Too few cells.
        assert!(t.row(&[Cell::Str("b")]).is_err());
        // Nothing of the refused rows was kept.
        assert_eq!(t.rows, 1);
        assert!(t.columns.iter().all(|b| match &b.values {
            Values::Str { ends, .. } => ends.len() <= 1,
            Values::Int(v) => v.len() == 1,
            Values::Bool(v) => v.len() <= 1,
        }));
        t.into_target().unwrap().commit().unwrap();
    }

    #[test]
    fn row_groups_end_at_page_ends_past_the_bound() {
        use parquet::file::reader::{FileReader as _, SerializedFileReader};
        let (dir, mut t) = table(Output::Pages, &["page_url", "status", "scripts"]);
        // Pages of 2 rows with a bound of 3 rows: groups of 4 rows, never 3.
        for page in 0..5u64 {
            for row in 0..2u64 {
                let url = format!("https://a.test/{page}");
                let status = if row == 0 { Cell::Int(200) } else { Cell::Null };
                t.row(&[Cell::Str(&url), status, Cell::Int(row)]).unwrap();
            }
            t.commit().unwrap();
        }
        t.into_target().unwrap().commit().unwrap();
        let file = std::fs::File::open(dir.path().join("out.parquet")).unwrap();
        let reader = SerializedFileReader::new(file).unwrap();
        let meta = reader.metadata();
        let sizes: Vec<i64> = meta.row_groups().iter().map(|g| g.num_rows()).collect();
        assert_eq!(sizes, [4, 4, 2]);
        let rows: Vec<String> = reader
            .get_row_iter(None)
            .unwrap()
            .map(|r| r.unwrap().to_string())
            .collect();
        assert_eq!(rows.len(), 10);
        assert_eq!(
            rows[1],
            r#"{page_url: "https://a.test/0", status: null, scripts: 1}"#
        );
    }

    /// What `Sink` writes when every optional value is absent: nulls in
    /// OPTIONAL columns only (a null in a REQUIRED one would fail the
    /// page).
    #[test]
    fn the_sink_writes_a_page_with_every_optional_value_absent() {
        use crate::error::{ErrorKind, PageError};
        use crate::output::{Encoding, PageResult, Sink};
        use parquet::file::reader::{FileReader as _, SerializedFileReader};
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str| {
            let path = dir.path().join(name);
            Target::open(&crate::output::Destination::File(path), false).unwrap()
        };
        let encoding = Encoding {
            format: crate::output::Format::Parquet,
            spreadsheet_safe: false,
        };
        let names = ["-o s".to_owned(), "--pages p".to_owned()];
        let mut sink = Sink::new(
            open("s"),
            Some(open("p")),
            names,
            &crate::output::Layout::full(true),
            encoding,
            true,
        )
        .unwrap();
        let bare = crate::extract::Script::bare(0);
        let page = |seq, outcome| PageResult {
            seq,
            page_url: format!("https://a.test/{seq}"),
            final_url: None,
            status: None,
            outcome,
            csp: None,
            bytes: 0,
            elapsed: std::time::Duration::ZERO,
            charset: None,
            attempts: 0,
            depth: 0,
            referrer: None,
            incomplete: None,
        };
        sink.write_page(&page(0, Ok(vec![bare]))).unwrap();
        let failed = PageError::new(ErrorKind::InvalidUrl, "");
        sink.write_page(&page(1, Err(failed))).unwrap();
        sink.finish().unwrap();
        let rows = |name: &str| {
            let file = std::fs::File::open(dir.path().join(name)).unwrap();
            let reader = SerializedFileReader::new(file).unwrap();
            reader.metadata().file_metadata().num_rows()
        };
        assert_eq!((rows("s"), rows("p")), (1, 2));
    }

    #[test]
    fn a_large_output_is_written_in_several_row_groups_none_splitting_a_page() {
        use parquet::file::reader::{FileReader as _, SerializedFileReader};
        use parquet::file::statistics::Statistics;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("large.parquet");
        let target = Target::open(&crate::output::Destination::File(path.clone()), false).unwrap();
        let columns = ["page_url", "index", "inline_bytes"];
        let mut t = ParquetTable::new(target, Output::Scripts, &columns).unwrap();
        // 300k rows in pages of 1 to 37 rows; inline_bytes holds the page
        // number, so that each group's statistics tell which pages it has.
        let (mut rows, mut page) = (0u64, 0u64);
        while rows < 300_000 {
            let url = format!("https://site{}.test/page/{page}", page % 50);
            for index in 0..(page % 37 + 1) {
                t.row(&[Cell::Str(&url), Cell::Int(index), Cell::Int(page)])
                    .unwrap();
                rows += 1;
            }
            t.commit().unwrap();
            page += 1;
        }
        t.into_target().unwrap().commit().unwrap();
        let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        let groups = reader.metadata().row_groups();
        assert!(groups.len() >= 2, "{} row groups", groups.len());
        let total: i64 = groups.iter().map(|g| g.num_rows()).sum();
        assert_eq!(total as u64, rows);
        let mut last_page = -1;
        for (i, group) in groups.iter().enumerate() {
            let n = group.num_rows() as usize;
            if i + 1 < groups.len() {
                // Past the bound by less than one page.
                assert!(
                    (ROW_GROUP_ROWS..ROW_GROUP_ROWS + 37).contains(&n),
                    "group {i}: {n}"
                );
            }
            let Some(Statistics::Int64(pages)) = group.column(2).statistics() else {
                panic!("no statistics for group {i}");
            };
            let (first, last) = (*pages.min_opt().unwrap(), *pages.max_opt().unwrap());
            // Every page in one group: the next group starts with the next
            // page.
            assert_eq!(first, last_page + 1, "group {i}");
            last_page = last;
        }
        assert_eq!(last_page as u64, page - 1);
    }

    #[test]
    fn long_columns_are_written_in_chunks_with_their_nulls() {
        use parquet::file::reader::{FileReader as _, SerializedFileReader};
        let (dir, mut t) = table(Output::Scripts, &["page_url", "src", "index"]);
        t.max_rows = usize::MAX;
        let n = WRITE_CHUNK as u64 * 2 + 17;
        for i in 0..n {
            let src = format!("https://cdn.test/{i}.js");
            let src = if i % 3 == 0 {
                Cell::Null
            } else {
                Cell::Str(&src)
            };
            t.row(&[Cell::Str("https://a.test/"), src, Cell::Int(i)])
                .unwrap();
        }
        t.commit().unwrap();
        t.into_target().unwrap().commit().unwrap();
        let file = std::fs::File::open(dir.path().join("out.parquet")).unwrap();
        let reader = SerializedFileReader::new(file).unwrap();
        let mut count = 0;
        for (i, row) in reader.get_row_iter(None).unwrap().enumerate() {
            let row = row.unwrap();
            let src = row.get_column_iter().nth(1).unwrap().1.clone();
            if i % 3 == 0 {
                assert_eq!(src, parquet::record::Field::Null, "row {i}");
            } else {
                assert_eq!(
                    src,
                    parquet::record::Field::Str(format!("https://cdn.test/{i}.js")),
                    "row {i}"
                );
            }
            count += 1;
        }
        assert_eq!(count, n as usize);
    }
}
