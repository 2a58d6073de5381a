//! Reading an evaluation set: a folder of images plus a `labels.csv` with the columns
//! `path,identity,session` (paths relative to the folder, session blank where unknown).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Name of the labels file looked for in a dataset folder when none is given.
pub const DEFAULT_LABELS: &str = "labels.csv";

/// Why a dataset could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("dataset folder {0} does not exist or is not a folder")]
    MissingDir(PathBuf),
    #[error("labels file not found: {}", tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" or "))]
    MissingLabels { tried: Vec<PathBuf> },
    #[error("cannot read labels file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("labels file {path} has an unreadable header: {message}")]
    BadHeader { path: PathBuf, message: String },
    #[error("labels file {path} has no {column:?} column (expected header path,identity,session)")]
    MissingColumn { path: PathBuf, column: &'static str },
    #[error("labels file {path}, line {line}: {message}")]
    BadRow {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("labels file {path} lists {sample:?} twice (line {line})")]
    DuplicatePath {
        path: PathBuf,
        line: u64,
        sample: String,
    },
    #[error("labels file {0} lists no images")]
    Empty(PathBuf),
}

/// One labelled image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Path exactly as written in the labels file (relative to the dataset folder).
    pub path: String,
    pub identity: String,
    /// Acquisition session, when known.
    pub session: Option<String>,
}

/// A labelled image set, in labels-file order.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Short name (the folder's name), used in reports and titles.
    pub name: String,
    pub root: PathBuf,
    pub labels_path: PathBuf,
    pub samples: Vec<Sample>,
}

impl Dataset {
    /// Read the dataset in `dir`. `labels` defaults to `dir/labels.csv`; a relative `labels`
    /// path that does not exist as given is also tried relative to `dir` (so
    /// `--labels labels_G.csv` works from anywhere).
    pub fn load(dir: &Path, labels: Option<&Path>) -> Result<Dataset, DatasetError> {
        if !dir.is_dir() {
            return Err(DatasetError::MissingDir(dir.to_path_buf()));
        }
        let labels_path = resolve_labels(dir, labels)?;
        let samples = read_labels(&labels_path)?;
        Ok(Dataset {
            name: dataset_name(dir),
            root: dir.to_path_buf(),
            labels_path,
            samples,
        })
    }

    /// Where a sample's image lives on disk.
    pub fn image_path(&self, sample: &Sample) -> PathBuf {
        self.root.join(&sample.path)
    }

    /// Number of distinct identities.
    pub fn identities(&self) -> usize {
        self.samples
            .iter()
            .map(|s| s.identity.as_str())
            .collect::<HashSet<_>>()
            .len()
    }
}

/// The labels file to read, following the `--labels` rules of [`Dataset::load`].
pub fn resolve_labels(dir: &Path, labels: Option<&Path>) -> Result<PathBuf, DatasetError> {
    let mut tried = Vec::new();
    match labels {
        None => tried.push(dir.join(DEFAULT_LABELS)),
        Some(given) => {
            tried.push(given.to_path_buf());
            if given.is_relative() {
                tried.push(dir.join(given));
            }
        }
    }
    match tried.iter().find(|p| p.is_file()) {
        Some(found) => Ok(found.clone()),
        None => Err(DatasetError::MissingLabels { tried }),
    }
}

fn dataset_name(dir: &Path) -> String {
    let named = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    named(dir)
        .or_else(|| dir.canonicalize().ok().and_then(|c| named(&c)))
        .unwrap_or_else(|| dir.display().to_string())
}

/// Parse a labels file: header with at least `path` and `identity` (`session` optional,
/// extra columns ignored, any order), one row per image.
pub fn read_labels(path: &Path) -> Result<Vec<Sample>, DatasetError> {
    let file = std::fs::File::open(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_labels(file, path)
}

/// [`read_labels`] on any reader; `path` is only used in error messages.
pub fn parse_labels<R: std::io::Read>(reader: R, path: &Path) -> Result<Vec<Sample>, DatasetError> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(reader);
    let headers = rdr
        .headers()
        .map_err(|e| DatasetError::BadHeader {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?
        .clone();
    if headers.iter().all(|h| h.is_empty()) {
        return Err(DatasetError::BadHeader {
            path: path.to_path_buf(),
            message: "empty header line".into(),
        });
    }
    let mut seen = HashSet::new();
    for h in headers.iter() {
        if !seen.insert(h) {
            return Err(DatasetError::BadHeader {
                path: path.to_path_buf(),
                message: format!("column {h:?} appears twice"),
            });
        }
    }
    let column = |name: &'static str| headers.iter().position(|h| h == name);
    let missing = |column: &'static str| DatasetError::MissingColumn {
        path: path.to_path_buf(),
        column,
    };
    let path_col = column("path").ok_or_else(|| missing("path"))?;
    let id_col = column("identity").ok_or_else(|| missing("identity"))?;
    let session_col = column("session");

    let mut samples = Vec::new();
    let mut paths = HashSet::new();
    for record in rdr.records() {
        let record = record.map_err(|e| DatasetError::BadRow {
            path: path.to_path_buf(),
            line: e.position().map_or(0, |p| p.line()),
            message: e.to_string(),
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let field = |i: usize| record.get(i).unwrap_or("");
        let sample_path = field(path_col);
        let identity = field(id_col);
        if sample_path.is_empty() && identity.is_empty() && record.iter().all(str::is_empty) {
            continue; // blank line
        }
        let bad = |message: &str| DatasetError::BadRow {
            path: path.to_path_buf(),
            line,
            message: message.to_string(),
        };
        if sample_path.is_empty() {
            return Err(bad("empty path"));
        }
        if identity.is_empty() {
            return Err(bad("empty identity"));
        }
        if !paths.insert(sample_path.to_string()) {
            return Err(DatasetError::DuplicatePath {
                path: path.to_path_buf(),
                line,
                sample: sample_path.to_string(),
            });
        }
        let session = session_col
            .map(field)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        samples.push(Sample {
            path: sample_path.to_string(),
            identity: identity.to_string(),
            session,
        });
    }
    if samples.is_empty() {
        return Err(DatasetError::Empty(path.to_path_buf()));
    }
    Ok(samples)
}

/// The real image sets, at `../shared/data` from the workspace root, for tests.
///
/// Returns `Some(dir)` when the folder exists. When it does not, prints
/// `skipping: ../shared/data not found ...` to stderr and returns `None` so the caller can
/// return early, except under CI (`CI=true`), where a missing folder is a failure.
///
/// # Panics
/// When the folder is missing and the environment variable `CI` is `true`.
pub fn shared_data_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    shared_data_dir_at(&dir, std::env::var("CI").ok().as_deref())
}

/// [`shared_data_dir`] with the folder and the value of `CI` given.
///
/// # Panics
/// When `dir` is missing and `ci` is `Some("true")`.
pub fn shared_data_dir_at(dir: &Path, ci: Option<&str>) -> Option<PathBuf> {
    if dir.is_dir() {
        return Some(dir.to_path_buf());
    }
    if ci.is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        panic!(
            "../shared/data not found at {} and CI=true: the real image sets must be present in CI",
            dir.display()
        );
    }
    eprintln!(
        "skipping: ../shared/data not found at {} (the real image sets are not part of the repository; with CI=true this is a failure)",
        dir.display()
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Sample>, DatasetError> {
        parse_labels(text.as_bytes(), Path::new("labels.csv"))
    }

    #[test]
    fn parses_rows_in_order_with_optional_session() {
        let s = parse("path,identity,session\na/1.bmp,p1,\na/2.bmp,p1,2\nb/1.bmp,p2,1\n").unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].path, "a/1.bmp");
        assert_eq!(s[0].identity, "p1");
        assert_eq!(s[0].session, None);
        assert_eq!(s[1].session.as_deref(), Some("2"));
        assert_eq!(s[2].identity, "p2");
    }

    #[test]
    fn columns_in_any_order_and_session_optional() {
        let s = parse("identity,path\np1,x.png\n").unwrap();
        assert_eq!(
            s,
            vec![Sample {
                path: "x.png".into(),
                identity: "p1".into(),
                session: None
            }]
        );
    }

    #[test]
    fn missing_column_is_typed() {
        match parse("file,identity\nx.png,p1\n") {
            Err(DatasetError::MissingColumn { column, .. }) => assert_eq!(column, "path"),
            other => panic!("expected MissingColumn, got {other:?}"),
        }
        match parse("path,who\nx.png,p1\n") {
            Err(DatasetError::MissingColumn { column, .. }) => assert_eq!(column, "identity"),
            other => panic!("expected MissingColumn, got {other:?}"),
        }
    }

    #[test]
    fn bad_header_is_typed() {
        assert!(matches!(
            parse("path,path,identity\na,b,c\n"),
            Err(DatasetError::BadHeader { .. })
        ));
        assert!(matches!(
            parse("\n"),
            Err(DatasetError::BadHeader { .. }) | Err(DatasetError::MissingColumn { .. })
        ));
    }

    #[test]
    fn empty_set_is_typed() {
        assert!(matches!(
            parse("path,identity,session\n"),
            Err(DatasetError::Empty(_))
        ));
        assert!(matches!(parse(""), Err(DatasetError::BadHeader { .. })));
    }

    #[test]
    fn bad_rows_are_typed() {
        assert!(matches!(
            parse("path,identity\nx.png,\n"),
            Err(DatasetError::BadRow { line: 2, .. })
        ));
        assert!(matches!(
            parse("path,identity\nx.png,p1,extra\n"),
            Err(DatasetError::BadRow { .. })
        ));
        assert!(matches!(
            parse("path,identity\nx.png,p1\nx.png,p2\n"),
            Err(DatasetError::DuplicatePath { line: 3, .. })
        ));
    }

    #[test]
    fn labels_resolution() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("labels.csv"), "path,identity\na.png,p\n").unwrap();
        std::fs::write(root.join("labels_G.csv"), "path,identity\nb.png,p\n").unwrap();
        assert_eq!(resolve_labels(root, None).unwrap(), root.join("labels.csv"));
        // A relative name that does not exist from the working directory is tried in DIR.
        assert_eq!(
            resolve_labels(root, Some(Path::new("labels_G.csv"))).unwrap(),
            root.join("labels_G.csv")
        );
        let abs = root.join("labels_G.csv");
        assert_eq!(resolve_labels(root, Some(&abs)).unwrap(), abs);
        match resolve_labels(root, Some(Path::new("nope.csv"))) {
            Err(DatasetError::MissingLabels { tried }) => assert_eq!(tried.len(), 2),
            other => panic!("expected MissingLabels, got {other:?}"),
        }
        let ds = Dataset::load(root, Some(Path::new("labels_G.csv"))).unwrap();
        assert_eq!(ds.samples[0].path, "b.png");
        assert_eq!(ds.image_path(&ds.samples[0]), root.join("b.png"));
        assert_eq!(ds.identities(), 1);
        assert!(matches!(
            Dataset::load(&root.join("missing"), None),
            Err(DatasetError::MissingDir(_))
        ));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            Dataset::load(empty.path(), None),
            Err(DatasetError::MissingLabels { .. })
        ));
    }

    #[test]
    fn shared_data_rule() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            shared_data_dir_at(dir.path(), Some("true")),
            Some(dir.path().to_path_buf())
        );
        let missing = dir.path().join("absent");
        assert_eq!(shared_data_dir_at(&missing, None), None);
        assert_eq!(shared_data_dir_at(&missing, Some("false")), None);
        let ci = std::panic::catch_unwind(|| shared_data_dir_at(&missing, Some("true")));
        assert!(ci.is_err(), "missing data under CI=true must fail");
    }
}
