//! `sous logs FUNCTION`: print a function's stored log streams, oldest first.

use std::path::{Path, PathBuf};

use anyhow::Context;

pub fn print(data_dir: &Path, function: &str) -> anyhow::Result<()> {
    let dir = data_dir.join("logs").join(function);
    let mut streams = Vec::new();
    collect(&dir, &mut streams)
        .with_context(|| format!("read log group /aws/lambda/{function}"))?;
    let mut events = Vec::new();
    for path in &streams {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        for line in text.lines() {
            if let Some((ms, message)) = line.split_once('\t') {
                events.push((
                    ms.parse::<i64>().unwrap_or(0),
                    sous_worker::logs::unescape(message),
                ));
            }
        }
    }
    events.sort_by_key(|(ms, _)| *ms);
    for (_, message) in events {
        println!("{message}");
    }
    Ok(())
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}
