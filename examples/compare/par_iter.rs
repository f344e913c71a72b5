//! rayon's parallel iterators on rayon-core and on pilfer: the program of
//! `benches/par_iter`, built twice (once as it is, once with rayon-core
//! patched to pilfer's package in `rayon-core/`), each run a child process
//! that builds its pool, takes a warm-up and prints its samples. The same
//! program with `--serial` times the same code on plain iterators.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The two builds of the benchmark program.
pub struct Builds {
    pub rayon: PathBuf,
    pub pilfer: PathBuf,
}

/// A workload of the program: its name and what it does.
pub struct Listed {
    pub name: String,
    pub what: String,
}

/// Where prebuilt copies of the two builds are, for a machine without
/// cargo or the crate registry: `$PILFER_PAR_ITER_BIN/rayon/par-iter-bench`
/// and `$PILFER_PAR_ITER_BIN/pilfer/par-iter-bench`
/// (`scripts/many-core.sh prepare` makes them).
pub const PREBUILT_ENV: &str = "PILFER_PAR_ITER_BIN";

/// Builds the program on rayon-core and on pilfer (each in its own target
/// directory, so both stay built), telling the user on stderr; or takes
/// the prebuilt copies that [`PREBUILT_ENV`] points to.
pub fn build() -> Result<Builds, String> {
    if let Some(dir) = std::env::var_os(PREBUILT_ENV) {
        let dir = PathBuf::from(dir);
        let builds = Builds {
            rayon: dir.join("rayon/par-iter-bench"),
            pilfer: dir.join("pilfer/par-iter-bench"),
        };
        for binary in [&builds.rayon, &builds.pilfer] {
            if !binary.is_file() {
                return Err(format!(
                    "{PREBUILT_ENV} is set, but {} is missing",
                    binary.display()
                ));
            }
        }
        return Ok(builds);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = root.join("benches/par_iter/Cargo.toml");
    let package = root.join("rayon-core");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut builds = Vec::new();
    for (variant, patch) in [("rayon", None), ("pilfer", Some(&package))] {
        let target = root.join("target/par-iter").join(variant);
        eprintln!("compare: building benches/par_iter on {variant} (once; then cached)");
        let mut command = Command::new(&cargo);
        command
            .args(["build", "--release", "--quiet", "--manifest-path"])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&target);
        if let Some(package) = patch {
            command.arg("--config").arg(format!(
                "patch.crates-io.rayon-core.path={:?}",
                package.display().to_string()
            ));
        }
        let status = command
            .status()
            .map_err(|error| format!("running cargo: {error}"))?;
        if !status.success() {
            return Err(format!("building benches/par_iter on {variant} failed"));
        }
        builds.push(target.join("release/par-iter-bench"));
    }
    let pilfer = builds.pop().expect("two builds");
    let rayon = builds.pop().expect("two builds");
    Ok(Builds { rayon, pilfer })
}

/// The program's workloads, in its order.
pub fn list(binary: &Path) -> Result<Vec<Listed>, String> {
    let output = Command::new(binary)
        .arg("--list")
        .output()
        .map_err(|error| format!("running {}: {error}", binary.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(name, what)| Listed {
            name: name.to_owned(),
            what: what.to_owned(),
        })
        .collect())
}

/// `count` samples of workload `name` on `threads` workers (or serial), in
/// a child process of `binary`.
pub fn samples(
    binary: &Path,
    name: &str,
    threads: usize,
    count: usize,
    serial: bool,
    quick: bool,
) -> Result<Vec<Duration>, String> {
    let mut command = Command::new(binary);
    command.args([name, &threads.to_string(), &count.to_string()]);
    if serial {
        command.arg("--serial");
    }
    if quick {
        command.arg("--quick");
    }
    let output = command
        .output()
        .map_err(|error| format!("running {}: {error}", binary.display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("");
        return Err(format!(
            "{name} ({}): {}: {last}",
            binary.display(),
            output.status
        ));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let first = text.lines().next().unwrap_or("");
    first
        .split_whitespace()
        .map(|ns| {
            ns.parse()
                .map(Duration::from_nanos)
                .map_err(|_| format!("{name}: unreadable sample {ns:?}"))
        })
        .collect()
}
