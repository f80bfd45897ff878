//! Loads the document corpus from disk and chunks it.
//!
//! # Why these rules?
//!
//! * **Deterministic order.** Files are visited recursively and sorted by their
//!   path relative to the corpus directory, because directory listing order
//!   differs between file systems. With a fixed order, chunk ids, index
//!   positions and therefore tie-breaking in search results are identical on
//!   every machine.
//! * **Portable sources.** A chunk's `source` is the relative path with `/`
//!   separators (e.g. `guides/otel.md`), so ids look the same on Windows and Unix
//!   and never leak the absolute location of the checkout.
//! * **Only `*.md` and `*.txt`** (case-insensitive) are read; hidden entries
//!   (names starting with `.`) are skipped so editor swap files or a `.git`
//!   directory never end up in the index. Symlinked files are followed,
//!   symlinked directories are not, which rules out cycles.
//! * **Fail loudly at startup.** A missing directory, an unreadable or non-UTF-8
//!   file, or a corpus that produces no chunks at all is a [`CorpusError`]: a
//!   retrieval service that silently serves an empty index would answer every
//!   question with nothing and be hard to diagnose.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::chunker::{Chunk, ChunkerConfig, chunk_document};

/// Why the corpus could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// The corpus directory does not exist or is not a directory.
    #[error("corpus directory {} does not exist or is not a directory", .dir.display())]
    NotFound { dir: PathBuf },
    /// A file or directory could not be read.
    #[error("failed to read {}", .path.display())]
    Io { path: PathBuf, source: io::Error },
    /// The corpus holds no `*.md`/`*.txt` file with any chunkable text.
    #[error("corpus directory {} contains no chunkable *.md or *.txt text", .dir.display())]
    Empty { dir: PathBuf },
    /// A corpus file is not valid UTF-8.
    #[error("corpus file {} is not valid UTF-8", .path.display())]
    InvalidUtf8 { path: PathBuf },
}

/// The repository's `corpus/` folder, next to the `retrieval` crate.
///
/// Resolved at compile time from `CARGO_MANIFEST_DIR`, so it is meant for
/// development and tests; deployments should pass their corpus path explicitly.
pub fn default_corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("corpus")
}

/// Reads and chunks every `*.md` and `*.txt` file under `dir` (recursively),
/// in relative-path order.
///
/// # Errors
///
/// [`CorpusError::NotFound`] if `dir` is missing or not a directory,
/// [`CorpusError::Io`] if a directory or file cannot be read,
/// [`CorpusError::InvalidUtf8`] if a file is not UTF-8, and
/// [`CorpusError::Empty`] if no file yields a chunk.
pub fn load_corpus(dir: &Path, cfg: &ChunkerConfig) -> Result<Vec<Chunk>, CorpusError> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(CorpusError::NotFound { dir: dir.into() }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(CorpusError::NotFound { dir: dir.into() });
        }
        Err(source) => {
            return Err(CorpusError::Io {
                path: dir.into(),
                source,
            });
        }
    }

    let mut files = Vec::new();
    collect_files(dir, &mut Vec::new(), &mut files)?;
    files.sort_unstable_by(|a, b| a.0.cmp(&b.0));

    let mut chunks = Vec::new();
    for (source, path) in files {
        let bytes = fs::read(&path).map_err(|source| CorpusError::Io {
            path: path.clone(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|_| CorpusError::InvalidUtf8 { path })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        chunks.extend(chunk_document(&source, text, cfg));
    }

    if chunks.is_empty() {
        return Err(CorpusError::Empty { dir: dir.into() });
    }
    Ok(chunks)
}

/// Appends `(relative source, absolute path)` for every corpus file below
/// `dir`; `prefix` holds the relative path components of `dir` itself.
fn collect_files(
    dir: &Path,
    prefix: &mut Vec<String>,
    out: &mut Vec<(String, PathBuf)>,
) -> Result<(), CorpusError> {
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CorpusError::Io { path, source }
    };

    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let file_type = entry.file_type().map_err(io_error(&path))?;
        if file_type.is_dir() {
            prefix.push(name);
            collect_files(&path, prefix, out)?;
            prefix.pop();
            continue;
        }
        let is_file = if file_type.is_symlink() {
            // A dangling link is skipped rather than failing the whole corpus.
            fs::metadata(&path).is_ok_and(|meta| meta.is_file())
        } else {
            file_type.is_file()
        };
        if is_file && has_corpus_extension(&name) {
            let mut source = prefix.join("/");
            if !source.is_empty() {
                source.push('/');
            }
            source.push_str(&name);
            out.push((source, path));
        }
    }
    Ok(())
}

fn has_corpus_extension(name: &str) -> bool {
    Path::new(name)
        .extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| ext.eq_ignore_ascii_case("md") || ext.eq_ignore_ascii_case("txt"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A unique temporary directory, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let dir = std::env::temp_dir().join(format!(
                "ragtrace-corpus-test-{}-{nanos}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn write(&self, relative: &str, contents: impl AsRef<[u8]>) {
            let path = self.0.join(relative);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, contents).unwrap();
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn loads_md_and_txt_recursively_in_sorted_order() {
        let tmp = TempDir::new();
        tmp.write("zeta.md", "# Zeta\n\nLast file.");
        tmp.write("guides/otel.md", "# OTel\n\nFirst para.\n\nSecond para.");
        tmp.write("alpha.TXT", "\u{feff}Plain text file.");
        tmp.write("guides/deep/notes.txt", "Deep note.");
        tmp.write("ignored.rs", "fn main() {}");
        tmp.write(".hidden.md", "Hidden.");
        tmp.write(".git/HEAD.md", "Hidden dir.");

        let cfg = ChunkerConfig {
            max_words: 2,
            overlap_words: 0,
        };
        let chunks = load_corpus(&tmp.0, &cfg).unwrap();
        let ids: Vec<_> = chunks.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "alpha.TXT#0",
                "alpha.TXT#1",
                "guides/deep/notes.txt#0",
                "guides/otel.md#0",
                "guides/otel.md#1",
                "zeta.md#0",
            ]
        );
        assert_eq!(chunks[0].text, "Plain text");
        assert_eq!(chunks[0].source, "alpha.TXT");
        assert_eq!(chunks[3].source, "guides/otel.md");
        assert_eq!(chunks[3].title, "OTel");
        assert_eq!(chunks[4].text, "Second para.");
        assert_eq!(chunks[5].title, "Zeta");

        // Loading twice gives identical results.
        assert_eq!(load_corpus(&tmp.0, &cfg).unwrap(), chunks);
    }

    #[test]
    fn missing_directory_is_not_found() {
        let tmp = TempDir::new();
        let missing = tmp.0.join("nope");
        let err = load_corpus(&missing, &ChunkerConfig::default()).unwrap_err();
        assert!(matches!(&err, CorpusError::NotFound { dir } if *dir == missing));
        assert!(err.to_string().contains("does not exist"));

        tmp.write("file.md", "text");
        let err = load_corpus(&tmp.0.join("file.md"), &ChunkerConfig::default()).unwrap_err();
        assert!(matches!(err, CorpusError::NotFound { .. }));
    }

    #[test]
    fn directory_without_chunks_is_empty_error() {
        let tmp = TempDir::new();
        let err = load_corpus(&tmp.0, &ChunkerConfig::default()).unwrap_err();
        assert!(matches!(&err, CorpusError::Empty { dir } if *dir == tmp.0));

        tmp.write("only-title.md", "# Title\n\n");
        tmp.write("other.json", "{}");
        let err = load_corpus(&tmp.0, &ChunkerConfig::default()).unwrap_err();
        assert!(matches!(err, CorpusError::Empty { .. }));
    }

    #[test]
    fn invalid_utf8_is_reported_with_its_path() {
        let tmp = TempDir::new();
        tmp.write("good.md", "fine");
        tmp.write("bad.txt", [0x66, 0x6f, 0xff, 0x6f]);
        let err = load_corpus(&tmp.0, &ChunkerConfig::default()).unwrap_err();
        assert!(matches!(&err, CorpusError::InvalidUtf8 { path } if path.ends_with("bad.txt")));
    }

    #[test]
    fn default_corpus_dir_is_the_repository_corpus_folder() {
        let dir = default_corpus_dir();
        assert!(dir.ends_with("corpus"));
        assert_eq!(
            dir.parent().and_then(|p| p.parent()),
            Some(Path::new(env!("CARGO_MANIFEST_DIR")))
        );
    }
}
