//! `--format parquet`: the same run written as CSV and as Parquet holds the
//! same rows, read back with the parquet crate and with an independent
//! reader (pyarrow and DuckDB, when a Python with them is at hand); the
//! documented schema; the `.part` rule; what is refused; diff reading it.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use parquet::basic::{Compression, LogicalType, Repetition, Type as Physical};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

use crate::support::{
    Run, Table, TestServer, on_terminal, refused_url, rows_without, sha384_sri, signal, wait_within,
};

/// The documented schema of the scripts output: name, type, required.
/// The field id is the position.
const SCRIPTS_SCHEMA: [(&str, Kind, bool); 29] = [
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
    ("inline_text", Kind::Str, false),
];

/// The documented schema of the page report.
const PAGES_SCHEMA: [(&str, Kind, bool); 13] = [
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Str,
    Int,
    Bool,
}

/// A Parquet file read back with the crate's reader.
struct Parquet {
    reader: SerializedFileReader<std::fs::File>,
    columns: Vec<String>,
    rows: Vec<Vec<Field>>,
}

impl Parquet {
    fn read(path: &Path) -> Parquet {
        let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let reader = SerializedFileReader::new(file)
            .unwrap_or_else(|e| panic!("{}: not Parquet: {e}", path.display()));
        let columns = reader
            .metadata()
            .file_metadata()
            .schema_descr()
            .columns()
            .iter()
            .map(|c| c.name().to_owned())
            .collect();
        let rows = reader
            .get_row_iter(None)
            .unwrap()
            .map(|row| {
                row.unwrap()
                    .get_column_iter()
                    .map(|(_, f)| f.clone())
                    .collect()
            })
            .collect();
        Parquet {
            reader,
            columns,
            rows,
        }
    }

    /// The rows as the CSV of the same run writes them: null and "" both
    /// empty, booleans `true`/`false`.
    fn as_csv(&self) -> Table {
        Table {
            headers: self.columns.clone(),
            rows: self
                .rows
                .iter()
                .map(|row| row.iter().map(csv_text).collect())
                .collect(),
        }
    }

    fn get(&self, row: usize, name: &str) -> &Field {
        let c = self.columns.iter().position(|n| n == name).unwrap();
        &self.rows[row][c]
    }

    /// The first row whose `column` is the text `value`.
    fn row_where(&self, column: &str, value: &str) -> usize {
        let c = self.columns.iter().position(|n| n == column).unwrap();
        self.rows
            .iter()
            .position(|r| r[c] == Field::Str(value.to_owned()))
            .unwrap_or_else(|| panic!("no row with {column} {value}"))
    }
}

fn csv_text(field: &Field) -> String {
    match field {
        Field::Null => String::new(),
        Field::Bool(b) => b.to_string(),
        Field::Long(n) => n.to_string(),
        Field::Str(s) => s.clone(),
        other => panic!("a value of a type scriptscrape does not write: {other:?}"),
    }
}

/// Checks the file's schema (names, types, repetition, field ids), its
/// codec, its metadata, and that every value is of its column's kind.
fn check_schema(parquet: &Parquet, expected: &[(&str, Kind, bool)], output: &str) {
    let meta = parquet.reader.metadata();
    let schema = meta.file_metadata().schema_descr();
    assert_eq!(schema.num_columns(), expected.len(), "{output}");
    for (i, (column, &(name, kind, required))) in schema.columns().iter().zip(expected).enumerate()
    {
        assert_eq!(column.name(), name);
        let info = column.self_type().get_basic_info();
        assert_eq!(info.id(), i as i32, "{name}: field id");
        let repetition = if required {
            Repetition::REQUIRED
        } else {
            Repetition::OPTIONAL
        };
        assert_eq!(info.repetition(), repetition, "{name}");
        let (physical, logical) = match kind {
            Kind::Str => (Physical::BYTE_ARRAY, Some(LogicalType::String)),
            Kind::Int => (Physical::INT64, None),
            Kind::Bool => (Physical::BOOLEAN, None),
        };
        assert_eq!(column.physical_type(), physical, "{name}");
        assert_eq!(column.logical_type_ref(), logical.as_ref(), "{name}");
    }
    for group in meta.row_groups() {
        for chunk in group.columns() {
            assert!(
                matches!(chunk.compression(), Compression::ZSTD(_)),
                "{}: {:?}",
                chunk.column_path(),
                chunk.compression()
            );
        }
    }
    let kv = meta.file_metadata().key_value_metadata().expect("metadata");
    let value = |key: &str| {
        kv.iter()
            .find(|k| k.key == key)
            .and_then(|k| k.value.clone())
    };
    assert_eq!(value("scriptscrape.output").as_deref(), Some(output));
    assert_eq!(
        value("scriptscrape.version").as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    for row in &parquet.rows {
        for (field, &(name, kind, required)) in row.iter().zip(expected) {
            let fits = match field {
                Field::Null => !required,
                Field::Str(_) => kind == Kind::Str,
                Field::Long(_) => kind == Kind::Int,
                Field::Bool(_) => kind == Kind::Bool,
                _ => false,
            };
            assert!(fits, "{output} {name}: {field:?}");
        }
    }
}

/// A page with what the other pages lack: scripts whose content is
/// fetched (one matching its integrity, one 404), a nonce, crossorigin
/// absent, empty and set.
fn content_page(server: &TestServer) -> String {
    let body = "console.log('lib');";
    server.set_script("lib.js", body, Duration::ZERO);
    server.set_page(
        "content",
        &format!(
            "<!doctype html><html><head>\
             <script src=\"/js/lib.js\" integrity=\"{}\" crossorigin=\"anonymous\"></script>\
             <script src=\"/js/gone.js\" crossorigin></script>\
             <script nonce=\"n1\">var x = '=1+1';</script>\
             </head><body><script type=\"module\" src=\"/js/lib.js\" defer></script>\
             <svg><script href=\"/js/lib.js\"></script></svg></body></html>",
            sha384_sri(body)
        ),
    );
    server.url("/page/content")
}

/// Every kind of page a run reports: scripts of each kind, a policy, a
/// failure of each broad kind, no scripts, an invalid line.
fn every_kind_of_page(server: &TestServer) -> Vec<String> {
    server.set_csp_page(
        "policy",
        "<script src=\"/a.js\"></script><script src=\"https://cdn.test/b.js\"></script>\
         <script>inline()</script>",
        &["script-src 'self'"],
    );
    vec![
        server.url("/fixtures/kitchen-sink.html"),
        server.url("/fixtures/formula.html"),
        server.url("/fixtures/no-scripts.html"),
        server.url("/csp/policy"),
        content_page(server),
        server.url("/status/500"),
        refused_url(),
        "not a url".to_owned(),
    ]
}

/// The run's arguments with the format and file names given.
fn scrape(
    run: &Run,
    list: &str,
    format: &str,
    scripts: &str,
    pages: &str,
) -> crate::support::Output {
    let out = run.run(
        &[
            list,
            "--format",
            format,
            "-o",
            scripts,
            "--pages",
            pages,
            "--inline-text",
            "--fetch-scripts",
            "--retries",
            "0",
            "-c",
            "4",
        ],
        None,
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    // Pages failed: exit 1.
    assert_eq!(out.code, 1, "{}", out.stderr);
    out
}

#[test]
fn parquet_holds_every_field_of_the_csv_run_typed() {
    let server = TestServer::start();
    let run = Run::new();
    let list = run.urls("urls.txt", &every_kind_of_page(&server));
    scrape(&run, &list, "csv", "s.csv", "p.csv");
    scrape(&run, &list, "parquet", "s.parquet", "p.parquet");

    for (csv, parquet, schema, output) in [
        ("s.csv", "s.parquet", &SCRIPTS_SCHEMA[..], "scripts"),
        ("p.csv", "p.parquet", &PAGES_SCHEMA[..], "pages"),
    ] {
        let csv = Table::read(&run.path(csv));
        let parquet = Parquet::read(&run.path(parquet));
        check_schema(&parquet, schema, output);
        assert_eq!(parquet.columns, csv.headers, "{output}: the CSV's columns");
        assert!(!csv.rows.is_empty());
        // Every field of every row, but the time each page took.
        assert_eq!(
            rows_without(&parquet.as_csv(), &["elapsed_ms"]),
            rows_without(&csv, &["elapsed_ms"]),
            "{output}"
        );
    }

    // What CSV cannot tell apart: an absent attribute (null) and an empty
    // one ("").
    let scripts = Parquet::read(&run.path("s.parquet"));
    let upper = scripts.row_where("src", &server.url("/static/Upper.js"));
    assert_eq!(scripts.get(upper, "crossorigin"), &Field::Null);
    let bare = scripts.row_where("src", "http://other.example.org/x.js?v=1");
    assert_eq!(scripts.get(bare, "crossorigin"), &Field::Str(String::new()));
    assert_eq!(scripts.get(bare, "index"), &Field::Long(9));
    assert_eq!(scripts.get(bare, "third_party"), &Field::Bool(true));
    let lib = scripts.row_where("src", &server.url("/js/lib.js"));
    assert_eq!(scripts.get(lib, "integrity_ok"), &Field::Bool(true));
    assert_eq!(scripts.get(lib, "content_status"), &Field::Long(200));
    let gone = scripts.row_where("src", &server.url("/js/gone.js"));
    assert_eq!(scripts.get(gone, "content_status"), &Field::Long(404));
    assert_eq!(scripts.get(gone, "inline_bytes"), &Field::Null);
    let svg = scripts.row_where("src", &server.url("/svg-href.js"));
    assert_eq!(scripts.get(svg, "svg"), &Field::Bool(true));
    let pages = Parquet::read(&run.path("p.parquet"));
    let failed = pages.row_where("page_url", &server.url("/status/500"));
    assert_eq!(pages.get(failed, "status"), &Field::Long(500));
    let invalid = pages.row_where("page_url", "not a url");
    assert_eq!(pages.get(invalid, "status"), &Field::Null);
    assert_eq!(pages.get(invalid, "final_url"), &Field::Null);
    assert_eq!(
        pages.get(invalid, "error"),
        &Field::Str("invalid_url".to_owned())
    );

    independent_reader(&run);
}

/// Reads the run's Parquet files with pyarrow and DuckDB and holds them
/// against its CSV files.
const PYTHON_CHECK: &str = r#"
import csv, sys
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

db = duckdb.connect()

def text(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)

for parquet, csv_path, output, required in (
    (sys.argv[1], sys.argv[3], "scripts", {
        "page_url", "index", "inline", "async", "defer", "nomodule", "svg", "third_party",
        "position", "nonce_present",
    }),
    (sys.argv[2], sys.argv[4], "pages", {
        "page_url", "scripts", "bytes", "elapsed_ms", "attempts", "depth",
    }),
):
    table = pq.read_table(parquet)
    with open(csv_path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    assert table.num_rows == len(rows), (output, table.num_rows, len(rows))
    assert table.column_names == header, (output, table.column_names, header)
    meta = pq.ParquetFile(parquet).metadata
    assert meta.metadata[b"scriptscrape.output"] == output.encode(), meta.metadata
    for g in range(meta.num_row_groups):
        for c in range(meta.num_columns):
            assert meta.row_group(g).column(c).compression == "ZSTD"
    for i, field in enumerate(table.schema):
        assert field.metadata[b"PARQUET:field_id"] == str(i).encode(), field
        assert field.nullable == (field.name not in required), field
        assert (
            pa.types.is_string(field.type)
            or pa.types.is_int64(field.type)
            or pa.types.is_boolean(field.type)
        ), field
    volatile = header.index("elapsed_ms") if "elapsed_ms" in header else None
    def without(row):
        return tuple(v for i, v in enumerate(row) if i != volatile)
    ours = sorted(without([text(v) for v in r.values()]) for r in table.to_pylist())
    theirs = sorted(without(r) for r in rows)
    assert ours == theirs, (output, ours[:2], theirs[:2])
    count = db.execute(f"SELECT count(*) FROM read_parquet('{parquet}')").fetchone()[0]
    assert count == len(rows), (output, count)

scripts = sys.argv[1]
types = dict(db.execute(
    f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('{scripts}'))"
).fetchall())
assert types["index"] == "BIGINT" and types["inline"] == "BOOLEAN", types
assert types["crossorigin"] == "VARCHAR", types
absent, empty = db.execute(
    f"SELECT count(*) FILTER (WHERE crossorigin IS NULL), count(*) FILTER (WHERE crossorigin = '') "
    f"FROM read_parquet('{scripts}')"
).fetchone()
assert absent > 0 and empty > 0, (absent, empty)
print("ok")
"#;

fn independent_reader(run: &Run) {
    let Some(python) = crate::support::python_with_duckdb("parquet") else {
        return;
    };
    let path = |name: &str| run.path(name).to_string_lossy().into_owned();
    let out = std::process::Command::new(python)
        .args(["-c", PYTHON_CHECK])
        .args([
            path("s.parquet"),
            path("p.parquet"),
            path("s.csv"),
            path("p.csv"),
        ])
        .output()
        .expect("run python");
    assert!(
        out.status.success() && out.stdout.starts_with(b"ok"),
        "pyarrow/DuckDB check failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_parquet_output_appears_whole_at_the_end_and_a_stopped_run_leaves_a_readable_part() {
    let server = TestServer::start();
    let run = Run::new();
    std::fs::write(run.path("s.parquet"), "the last run's").unwrap();
    let list = run.urls(
        "urls.txt",
        &[
            server.url("/fixtures/kitchen-sink.html"),
            server.url("/slow/1500/formula.html"),
        ],
    );
    let mut child = run.spawn_quiet(&[&list, "--format", "parquet", "-o", "s.parquet"]);
    let part = run.path("s.parquet.part");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !part.exists() {
        assert!(std::time::Instant::now() < deadline, "no .part");
        std::thread::sleep(Duration::from_millis(20));
    }
    // While the run goes on, the old file is there as it was.
    assert_eq!(
        std::fs::read_to_string(run.path("s.parquet")).unwrap(),
        "the last run's"
    );
    let status = wait_within(&mut child, Duration::from_secs(30)).expect("ends");
    assert_eq!(status.code(), Some(0));
    assert!(!part.exists());
    let done = Parquet::read(&run.path("s.parquet"));
    assert_eq!(done.rows.len(), 11 + 4);

    // Stopped (SIGINT, with no grace): what was written is a readable
    // Parquet file under the .part name; the old file stays.
    let list = run.urls(
        "slow.txt",
        &[
            server.url("/fixtures/kitchen-sink.html"),
            server.url("/slow/20000/formula.html"),
        ],
    );
    let mut child = run.spawn_quiet(&[
        &list,
        "--format",
        "parquet",
        "-o",
        "s.parquet",
        "--grace",
        "0",
    ]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while server.hits("/slow/20000/formula.html") == 0
        || server.hits("/fixtures/kitchen-sink.html") == 0
    {
        assert!(std::time::Instant::now() < deadline, "not started");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The fast page written (it is buffered: nothing shows on disk yet).
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, libc::SIGINT);
    let status = wait_within(&mut child, Duration::from_secs(30)).expect("stops");
    assert_eq!(status.code(), Some(130));
    let kept = Parquet::read(&part);
    assert_eq!(kept.rows.len(), 11, "the finished page's rows");
    assert_eq!(Parquet::read(&run.path("s.parquet")).rows.len(), 15);
}

#[test]
fn what_parquet_cannot_do_is_refused_with_the_reason() {
    let run = Run::new();
    let list = run.urls("urls.txt", &["http://127.0.0.1:9/"]);
    let out = run.run(
        &[
            &list,
            "--format",
            "parquet",
            "--resume",
            "-o",
            "s.parquet",
            "--pages",
            "p.parquet",
        ],
        None,
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("--resume cannot continue --format parquet: a Parquet file can be read only once it is complete"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--format jsonl"), "{}", out.stderr);
    assert!(!run.path("s.parquet.part").exists());

    // collect acknowledges what is durable: refused before any connection.
    let out = run.run(
        &[
            "collect",
            "--redis",
            "redis://127.0.0.1:9/",
            "--job",
            "j",
            "--format",
            "parquet",
            "-o",
            "s.parquet",
        ],
        None,
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("collect cannot write --format parquet"),
        "{}",
        out.stderr
    );

    // Binary output to a terminal.
    let command = format!(
        "{} {list} --format parquet",
        env!("CARGO_BIN_EXE_scriptscrape")
    );
    let (status, screen) = on_terminal(run.dir.path(), &command);
    assert_eq!(status.code(), Some(2), "{screen}");
    assert!(screen.contains("can mess up your terminal"), "{screen}");
}

#[test]
fn parquet_goes_to_a_pipe() {
    let server = TestServer::start();
    let run = Run::new();
    let list = run.urls("urls.txt", &[server.url("/fixtures/kitchen-sink.html")]);
    let out = run.run(&[&list, "--format", "parquet"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    std::fs::write(run.path("piped.parquet"), &out.stdout).unwrap();
    let parquet = Parquet::read(&run.path("piped.parquet"));
    assert_eq!(parquet.rows.len(), 11);
    check_schema(&parquet, &SCRIPTS_SCHEMA[..28], "scripts");

    // A reader that went away is no error, as with CSV (`| head`).
    let mut child = run
        .command(&[&list, "--format", "parquet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = wait_within(&mut child, Duration::from_secs(30)).expect("ends");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
}

#[test]
fn diff_and_inventory_read_parquet_as_they_read_csv() {
    let server = TestServer::start();
    let run = Run::new();
    server.set_page(
        "p",
        "<script src=\"/a.js\"></script><script src=\"https://cdn.test/x.js\" crossorigin></script>",
    );
    let list = run.urls(
        "urls.txt",
        &[
            server.url("/page/p"),
            server.url("/fixtures/formula.html"),
            server.url("/status/404"),
        ],
    );
    let both = |tag: &str| {
        for (format, ext) in [("csv", "csv"), ("parquet", "parquet")] {
            let out = run.run(
                &[
                    &list,
                    "--format",
                    format,
                    "-o",
                    &format!("{tag}.{ext}"),
                    "--pages",
                    &format!("{tag}-pages.{ext}"),
                ],
                None,
            );
            assert_eq!(out.code, 1, "{}", out.stderr);
        }
    };
    both("old");
    server.set_page(
        "p",
        "<script src=\"/b.js\"></script><script src=\"https://cdn.test/x.js\" crossorigin=\"use-credentials\"></script><script>new()</script>",
    );
    both("new");
    let diff = |ext: &str, old: &str, stdin: Option<&Path>| {
        let new = format!("new.{ext}");
        let new_pages = format!("new-pages.{ext}");
        let old_pages = format!("old-pages.{ext}");
        let args = [
            "diff",
            old,
            &new,
            "--old-pages",
            &old_pages,
            "--new-pages",
            &new_pages,
        ];
        let mut command = run.command(&args);
        command.stderr(Stdio::piped()).stdout(Stdio::piped());
        command.stdin(match stdin {
            Some(path) => Stdio::from(std::fs::File::open(path).unwrap()),
            None => Stdio::null(),
        });
        let out = command.output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let from_csv = diff("csv", "old.csv", None);
    assert!(from_csv.contains("crossorigin"), "{from_csv}");
    assert_eq!(diff("parquet", "old.parquet", None), from_csv);
    // From standard input: spooled, then read as a file.
    assert_eq!(
        diff("parquet", "-", Some(&run.path("old.parquet"))),
        from_csv
    );
    // The same run in either format: no changes.
    let out = run.run(&["diff", "new.csv", "new.parquet"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);

    std::fs::write(run.path("allow.txt"), "127.0.0.1\n").unwrap();
    let inventory = |ext: &str| {
        let out = run.run(
            &[
                "inventory",
                &format!("new.{ext}"),
                "--pages",
                &format!("new-pages.{ext}"),
                "--allow",
                "allow.txt",
                "--format",
                "jsonl",
            ],
            None,
        );
        assert!(out.code <= 1, "{}", out.stderr);
        out.stdout
    };
    assert_eq!(inventory("parquet"), inventory("csv"));

    // A .part a killed run left: no footer, said so.
    let bytes = std::fs::read(run.path("new.parquet")).unwrap();
    std::fs::write(run.path("cut.parquet"), &bytes[..bytes.len() / 2]).unwrap();
    let out = run.run(&["diff", "old.parquet", "cut.parquet"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("cut.parquet: not a complete Parquet file"),
        "{}",
        out.stderr
    );
}

#[test]
fn shards_write_parquet_files_that_join_into_the_whole_run() {
    let servers: Vec<TestServer> = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]
        .iter()
        .map(|ip| TestServer::start_on(ip))
        .collect();
    let run = Run::new();
    let urls: Vec<String> = servers
        .iter()
        .flat_map(|s| (0..6).map(move |n| s.url(&format!("/gen/{n}"))))
        .collect();
    let list = run.urls("urls.txt", &urls);
    let out = run.run(&[&list, "-o", "whole.csv"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut joined = Table {
        headers: Vec::new(),
        rows: Vec::new(),
    };
    for k in 1..=2 {
        let out = run.run(
            &[
                &list,
                "--shard",
                &format!("{k}/2"),
                "--format",
                "parquet",
                "-o",
                &format!("scripts-{k}.parquet"),
            ],
            None,
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        let shard = Parquet::read(&run.path(&format!("scripts-{k}.parquet"))).as_csv();
        joined.headers = shard.headers;
        joined.rows.extend(shard.rows);
    }
    let whole = Table::read(&run.path("whole.csv"));
    assert_eq!(rows_without(&joined, &[]), rows_without(&whole, &[]));
}
