//! Reading manifests from files and directories: the one place this crate does IO.

use std::path::{Path, PathBuf};

use crate::load::Source;
use crate::model::Checked;

/// A file or directory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Reading a file or listing a directory failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ConfigError + '_ {
    move |source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads `paths`: a file is read whatever its name; a directory contributes its `.yaml` and
/// `.yml` files and those of its subdirectories, sorted by path so that results are
/// deterministic. Hidden entries (such as Kubernetes' `..data` in a mounted ConfigMap, whose
/// files also appear at the top level) are skipped.
pub fn read_paths<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<Source>, ConfigError> {
    let mut sources = Vec::new();
    for path in paths {
        let path = path.as_ref();
        if path.is_dir() {
            let mut files = Vec::new();
            yaml_files(path, &mut files)?;
            files.sort();
            for file in files {
                sources.push(read_file(&file)?);
            }
        } else {
            sources.push(read_file(path)?);
        }
    }
    Ok(sources)
}

/// Collects the YAML files under `dir`, descending into subdirectories.
fn yaml_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), ConfigError> {
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let path = entry.map_err(io_error(dir))?.path();
        let hidden = path
            .file_name()
            .and_then(|name| name.to_str())
            .is_none_or(|name| name.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            yaml_files(&path, files)?;
        } else if path.is_file()
            && path
                .extension()
                .is_some_and(|extension| extension == "yaml" || extension == "yml")
        {
            files.push(path);
        }
    }
    Ok(())
}

fn read_file(path: &Path) -> Result<Source, ConfigError> {
    let contents = std::fs::read_to_string(path).map_err(io_error(path))?;
    Ok(Source::new(path.display().to_string(), contents))
}

/// [`read_paths`] then [`crate::check`].
pub fn load_paths<P: AsRef<Path>>(paths: &[P]) -> Result<Checked, ConfigError> {
    Ok(crate::check(&read_paths(paths)?))
}
