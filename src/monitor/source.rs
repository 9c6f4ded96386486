//! Reading one process's numbers: what a reading holds and why one fails, pid files, and the
//! process's own Prometheus endpoint. Local processes (by pid, pid file or name/cmdline
//! match, alone or with their descendants) are read through the platform's process table
//! ([`super::local`]): /proc on Linux ([`super::procfs`]), sysinfo elsewhere.

use std::path::Path;

use super::expo;
pub use super::reading::{
    describe_match, ChildMemory, Identity, Reading, SampleError, TreeReading,
};
use super::settings::{ScrapeNames, Source};

#[cfg(target_os = "linux")]
pub use super::procfs::read as read_local;

/// Reads a pid file (trimmed decimal pid).
pub fn read_pid_file(path: &Path) -> Result<u32, SampleError> {
    let text = std::fs::read_to_string(path).map_err(|e| SampleError::PidFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    match text.trim().parse::<u32>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(SampleError::PidFile {
            path: path.to_path_buf(),
            reason: format!("does not hold a pid: {:?}", text.trim()),
        }),
    }
}

/// Scrapes and reads one process's exposition.
pub async fn read_scrape(
    client: &reqwest::Client,
    url: &url::Url,
    names: &ScrapeNames,
) -> Result<Reading, SampleError> {
    let resp = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| SampleError::Scrape(without_url(e)))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(SampleError::Scrape(format!("HTTP {status}")));
    }
    let text = resp
        .text()
        .await
        .map_err(|e| SampleError::Scrape(without_url(e)))?;
    parse_scrape(&text, names)
}

/// Turns an exposition into a [`Reading`].
pub fn parse_scrape(text: &str, names: &ScrapeNames) -> Result<Reading, SampleError> {
    let [rss, fds, threads, start, cpu] = expo::find_first(
        text,
        [
            names.rss.as_str(),
            names.fds.as_str(),
            names.threads.as_str(),
            names.start_time.as_str(),
            names.cpu.as_str(),
        ],
    )?;
    let finite = |v: Option<f64>| v.filter(|v| v.is_finite());
    let rss = finite(rss).ok_or_else(|| SampleError::Missing(names.rss.clone()))?;
    let (fds, threads) = (finite(fds), finite(threads));
    let missing: Vec<&str> = [(&names.fds, fds), (&names.threads, threads)]
        .into_iter()
        .filter(|(_, v)| v.is_none())
        .map(|(n, _)| n.as_str())
        .collect();
    Ok(Reading {
        identity: Identity {
            pid: None,
            start: finite(start),
        },
        rss: Some(rss),
        fds,
        threads,
        cpu: finite(cpu),
        partial: (!missing.is_empty()).then(|| format!("exposition lacks {}", missing.join(", "))),
        tree: None,
    })
}

/// reqwest errors print the URL; the message is fine in a log but keep it short.
fn without_url(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "bad body"
    } else {
        "request error"
    };
    format!("{kind}: {}", e.without_url())
}

/// True for sources read from the platform's process table (every one but a scrape).
pub fn is_local(source: &Source) -> bool {
    source.is_local()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::ScratchDir;

    #[test]
    fn pid_file_errors() {
        let dir = ScratchDir::new("pidfile");
        let f = dir.write("p.pid", "  4321\n");
        assert_eq!(read_pid_file(&f).unwrap(), 4321);
        std::fs::write(&f, "nope").unwrap();
        let e = read_pid_file(&f).unwrap_err().to_string();
        assert!(e.contains("does not hold a pid"), "{e}");
        assert!(read_pid_file(&dir.join("absent")).is_err());
    }

    #[test]
    fn scrape_text_to_reading() {
        let names = ScrapeNames::default();
        let r = parse_scrape(
            "process_resident_memory_bytes 1e6\nprocess_open_fds 5\nprocess_start_time_seconds 17e8\n",
            &names,
        )
        .unwrap();
        assert_eq!(r.rss, Some(1e6));
        assert_eq!(r.fds, Some(5.0));
        assert_eq!(r.threads, None);
        assert_eq!(r.identity.start, Some(1.7e9));
        assert!(r.partial.unwrap().contains("process_threads"));
        assert!(matches!(
            parse_scrape("process_open_fds 5\n", &names),
            Err(SampleError::Missing(_))
        ));
        assert!(matches!(
            parse_scrape("process_resident_memory_bytes NaN\n", &names),
            Err(SampleError::Missing(_))
        ));
        assert!(matches!(
            parse_scrape("<html>", &names),
            Err(SampleError::Exposition(_))
        ));
    }
}
