//! The self-contained HTML report (`--report FILE`, `[run] report_html`).
//!
//! One file: the live page's template with uPlot, the page script and its style inlined, and
//! the series ([`crate::series::SeriesJson`]) and the end-of-run summary
//! ([`crate::report::Summary`]) embedded as JSON. It loads nothing, so it opens offline.
//!
//! Rules:
//! - [`check_path`] runs at config validation, before anything starts: the parent directory
//!   must exist and be a directory; an existing file must be a regular file that opens for
//!   writing (it is not truncated); a new file is created and removed again, so a directory
//!   soakd may not write in is found even as root (read-only mounts) and no file is left.
//! - [`write()`] writes a temporary file beside the target and renames it over the target, so
//!   the report is either the old file or the whole new one; the temporary file is removed
//!   on failure.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::{data_element, fill, PAGE_CSS, PAGE_JS, UPLOT_CSS, UPLOT_JS};
use crate::report::Summary;

/// The report's HTML for the serialised series and the summary.
pub fn html(series_json: &[u8], summary: &Summary) -> String {
    let summary = serde_json::to_string(summary).unwrap_or_else(|_| "null".into());
    let series = std::str::from_utf8(series_json).unwrap_or("null");
    let data = format!("{{\"series\":{series},\"summary\":{summary}}}");
    let styles = format!("<style>\n{UPLOT_CSS}\n</style>\n<style>\n{PAGE_CSS}\n</style>");
    let scripts = format!("<script>\n{UPLOT_JS}\n</script>\n<script>\n{PAGE_JS}\n</script>");
    fill(&styles, &data_element(&data), &scripts)
}

/// Writes `html` to `path` through a temporary file in the same directory.
pub fn write(path: &Path, html: &str) -> std::io::Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(html.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report.html".into());
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Checks that the report can be written at `path` (see the module docs); the error says why
/// not.
pub fn check_path(path: &Path) -> Result<(), String> {
    if path.as_os_str().is_empty() {
        return Err("is empty".into());
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match std::fs::metadata(&parent) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(format!("{} is not a directory", parent.display())),
        Err(e) => return Err(format!("directory {}: {e}", parent.display())),
    }
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err("is a directory".into()),
        Ok(m) if !m.is_file() => Err("is not a regular file".into()),
        Ok(_) => OpenOptions::new()
            .write(true)
            .open(path)
            .map(drop)
            .map_err(|e| format!("cannot be written: {e}")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .map_err(|e| format!("cannot be created: {e}"))?;
            std::fs::remove_file(path).map_err(|e| format!("cannot be removed after a test: {e}"))
        }
        Err(e) => Err(format!("cannot be read: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::ScratchDir;

    #[test]
    fn a_writable_path_passes_and_leaves_nothing_behind() {
        let d = ScratchDir::new("report-ok");
        let p = d.join("report.html");
        check_path(&p).unwrap();
        assert!(!p.exists(), "the probe file is removed");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
        // An existing file passes and is left as it was.
        std::fs::write(&p, "old").unwrap();
        check_path(&p).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old");
    }

    #[test]
    fn unwritable_paths_are_refused_with_a_reason() {
        let d = ScratchDir::new("report-bad");
        let missing = d.join("no-such-dir").join("r.html");
        let e = check_path(&missing).unwrap_err();
        assert!(
            e.contains("no-such-dir") && e.contains("No such file"),
            "{e}"
        );
        let e = check_path(d.path()).unwrap_err();
        assert_eq!(e, "is a directory");
        let file = d.join("plain");
        std::fs::write(&file, "x").unwrap();
        let e = check_path(&file.join("r.html")).unwrap_err();
        assert!(e.contains("not a directory"), "{e}");
        // /proc refuses new files even to root.
        let e = check_path(Path::new("/proc/soakd-report.html")).unwrap_err();
        assert!(e.contains("cannot be created"), "{e}");
    }

    #[test]
    fn write_replaces_the_file_whole_and_leaves_no_temporary() {
        let d = ScratchDir::new("report-write");
        let p = d.join("r.html");
        std::fs::write(&p, "old").unwrap();
        write(&p, "<html>new</html>").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "<html>new</html>");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        assert!(write(&d.join("gone").join("r.html"), "x").is_err());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn inlined_assets_cannot_end_their_elements_early() {
        for (name, text) in [("page.js", PAGE_JS), ("uPlot", UPLOT_JS)] {
            let t = text.to_ascii_lowercase();
            assert!(!t.contains("</script") && !t.contains("<!--"), "{name}");
        }
        for (name, text) in [("page.css", PAGE_CSS), ("uPlot.css", UPLOT_CSS)] {
            assert!(!text.to_ascii_lowercase().contains("</style"), "{name}");
        }
    }
}
