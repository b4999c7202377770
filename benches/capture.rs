//! What output capture costs a pane: `cat` of a large file of log lines in
//! a private tmux server's pane, timed inside the pane, without capture,
//! with the pane's `pipe-pane` into `cat > /dev/null` (what tmux's piping
//! alone costs: the floor of any capture built on it), with
//! `tmux-audit capture` on it, and with capture of a `cat` marked as a
//! command, as the shell hook marks each (the marks it prints, printed by
//! the pane: the per-command cap keeps the head and the tail, and only
//! counts and hashes the rest; without the hook, as in the third kind,
//! all is kept: the worst case). Prints the median of several rounds of each,
//! what the floor and each capture added in each round (the runs of a
//! round back to back, every other round in the reverse order, so that a
//! machine speeding up or slowing down favours none) and the median of
//! that, the tmux server's CPU time over the cat (steadier than the cat's
//! time on a busy machine) and, where the kernel counts it, its time
//! runnable but waiting for a CPU (what a busy capture process takes from
//! it); and per kind of capture, the output lost (the bytes its gaps count:
//! dropped while its writer was behind) and kept or counted by the cap,
//! against what the pane printed (the file with a `\r` before each newline,
//! and the marks), the bytes on disk per MB of output, and the capture
//! process's memory after the cat.
//!
//!     cargo bench --bench capture            # 200 MB, 3 rounds
//!     MB=50 ROUNDS=5 cargo bench --bench capture
//!
//! Then `search --output`'s reading of captured output, through the
//! library (`capture::output`): SEARCH_MB (default 1024) MB of output of
//! commands of 1 MiB each in one pane's segments, every command read for
//! a text none printed (the worst case: nothing stops the search early),
//! with one [`Reader`] (as `search` reads) and, for a sample of commands,
//! decoding the segments again for each (as it read before). ONLY=cat or
//! ONLY=search runs one part.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::{cpu_time, env_or, ms, run_queue_wait};

fn main() {
    let only = std::env::var("ONLY").unwrap_or_default();
    if only != "search" {
        cat_bench();
    }
    if only != "cat" {
        search_output_bench();
    }
}

/// Reading SEARCH_MB of captured output for a text no command printed.
fn search_output_bench() {
    use tmux_audit::capture::{self, output, segment};
    use tmux_audit::record::CommandRecord;
    let mb: usize = env_or("SEARCH_MB", 1024);
    let sample: usize = env_or("SAMPLE", 10);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.db");
    let root = capture::root(&db);
    let pane_dir = capture::pane_dir(&root, 4242, "%1").unwrap();
    let mut writer = segment::Writer::new(&root, pane_dir).unwrap();
    let line = b"203.0.113.9 - - [29/Nov/2026:10:00:00 +0000] \"GET /api/v1/items?page=2 HTTP/1.1\" 200 5120\r\n";
    let per_command = 1 << 20;
    let t0 = 1_800_000_000_000_000i64;
    let mut commands = Vec::new();
    let made = Instant::now();
    for seq in 1..=mb as i64 {
        // A command every 30 s; its output read over its first second.
        let start = t0 + seq * 30_000_000;
        writer.push(segment::OUTPUT, start, &capture::start_mark("bench", seq));
        let mut written = 0;
        let mut at = start;
        while written < per_command {
            let mut chunk = Vec::with_capacity(64 << 10);
            while chunk.len() < 64 << 10 {
                chunk.extend_from_slice(line);
            }
            written += chunk.len();
            at += 1_000;
            writer.push(segment::OUTPUT, at, &chunk);
            if writer.pending() >= 128 << 10 {
                writer.flush(at).unwrap();
            }
        }
        writer.push(segment::OUTPUT, at, &capture::end_mark("bench", seq));
        writer.flush(at).unwrap();
        commands.push(CommandRecord {
            shell_session: "bench".into(),
            seq,
            started_at_us: start,
            duration_us: Some(at - start + 1),
            tmux_server_pid: Some(4242),
            tmux_pane: Some("%1".into()),
            ..CommandRecord::default()
        });
    }
    writer.close();
    commands.reverse(); // newest first, as search reads
    let Segments { on_disk, .. } = segments_in(dir.path(), false);
    println!(
        "search --output: {mb} commands of 1 MiB of output ({} MB compressed to {} MB, made in {})",
        mb,
        on_disk >> 20,
        ms(made.elapsed())
    );
    let text = b"no command printed this";
    let started = Instant::now();
    let mut reader = output::Reader::default();
    let found = commands
        .iter()
        .filter(|c| reader.printed(&db, c, text))
        .count();
    let with_reader = started.elapsed();
    assert_eq!(found, 0);
    println!(
        "  one Reader (search now): {} for all {} commands ({:.2} s per GB)",
        ms(with_reader),
        commands.len(),
        with_reader.as_secs_f64() * 1024.0 / mb as f64
    );
    let started = Instant::now();
    let sample = sample.min(commands.len());
    for c in &commands[..sample] {
        let found = output::command_output(&db, c).unwrap();
        assert!(memchr::memmem::find(output::plain_text(&found.bytes).as_bytes(), text).is_none());
    }
    let each = started.elapsed() / sample as u32;
    println!(
        "  segments decoded again for each command (search before): {} per command, so about {} for all",
        ms(each),
        ms(each * commands.len() as u32)
    );
}

fn cat_bench() {
    let mb: usize = env_or("MB", 200);
    let rounds: usize = env_or("ROUNDS", 3);
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/tmux-audit");
    assert!(
        bin.exists(),
        "build the release binary first (cargo bench builds it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("output.log");
    let lines = write_log_lines(&file, mb << 20);
    println!("cat of {mb} MB of log lines in a tmux pane, {rounds} rounds");
    // Per kind of run (`Pipe as usize`): the cat's times, the tmux
    // server's CPU time over each cat, and how long it waited, runnable,
    // for a CPU then.
    let mut took: [Vec<Duration>; 4] = Default::default();
    let mut tmux_cpu: [Vec<Duration>; 4] = Default::default();
    let mut tmux_waited: [Vec<Duration>; 4] = Default::default();
    // Per capture run: what its segments say; per kind, the last one's
    // memory.
    let mut captured: [Vec<Segments>; 4] = Default::default();
    let mut memory = [(0, 0); 4];
    for round in 0..rounds {
        let mut pipes = Pipe::ALL;
        if round % 2 == 1 {
            pipes.reverse();
        }
        for pipe in pipes {
            let run = cat_in_pane(&bin, dir.path(), &file, pipe, round);
            took[pipe as usize].push(run.took);
            tmux_cpu[pipe as usize].push(run.tmux_cpu);
            tmux_waited[pipe as usize].extend(run.tmux_waited);
            if let Some(segments) = run.segments {
                captured[pipe as usize].push(segments);
            }
            memory[pipe as usize] = run.memory_kb;
        }
    }
    let without = &took[Pipe::None as usize];
    let a = median(&mut without.clone());
    println!("without capture: median {}", ms(a));
    for pipe in &Pipe::ALL[1..] {
        let runs = &took[*pipe as usize];
        let label = pipe.label();
        // Each round's runs were back to back: their ratio is what piping
        // cost then, whatever the machine's speed in that round (a shared
        // VM's moved by more than the 10 % sought between rounds).
        let mut added: Vec<f64> = without
            .iter()
            .zip(runs)
            .map(|(a, b)| (b.as_secs_f64() / a.as_secs_f64() - 1.0) * 100.0)
            .collect();
        let rounds_added = added
            .iter()
            .map(|p| format!("{p:+.1} %"))
            .collect::<Vec<_>>()
            .join(", ");
        added.sort_by(f64::total_cmp);
        let b = median(&mut runs.clone());
        println!(
            "{label}: median {} ({:+.1} %); added per round: {rounds_added}; median {:+.1} %",
            ms(b),
            (b.as_secs_f64() / a.as_secs_f64() - 1.0) * 100.0,
            added[added.len() / 2]
        );
    }
    let medians = |times: &[Vec<Duration>]| {
        Pipe::ALL
            .iter()
            .map(|pipe| {
                format!(
                    "{} {}",
                    pipe.label(),
                    ms(median(&mut times[*pipe as usize].clone()))
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "tmux server's CPU over the cat, median: {}",
        medians(&tmux_cpu)
    );
    // The cat waits on tmux, which parses all it prints: the cat's time is
    // about tmux's CPU time plus tmux's time runnable but not running,
    // which is what another busy process (the capture) takes from it.
    if tmux_waited.iter().all(|runs| runs.len() == rounds) {
        println!(
            "tmux server's wait for a CPU over the cat, median: {}",
            medians(&tmux_waited)
        );
    }
    // The tty puts a `\r` before each newline.
    let printed = fs::metadata(&file).unwrap().len() + lines;
    for pipe in [Pipe::Capture, Pipe::CaptureMarked] {
        let runs = &captured[pipe as usize];
        // The marks are kept too: `ESC ] … BEL` each.
        let printed = match pipe {
            Pipe::CaptureMarked => printed + MARKS.iter().map(|m| m.len() as u64 + 3).sum::<u64>(),
            _ => printed,
        };
        let label = pipe.label();
        let lost: Vec<u64> = runs.iter().map(|s| s.lost).collect();
        // What the cap only counted is not lost: kept and counted are all.
        let kept: Vec<u64> = runs.iter().map(|s| s.kept + s.cut).collect();
        println!("{label}: output lost (gaps) per round, bytes: {lost:?}");
        println!(
            "{label}: output kept or counted per round, bytes (of {printed} printed): {kept:?}"
        );
        let on_disk = runs.last().map_or(0, |s| s.on_disk);
        println!(
            "{label}: on disk {on_disk} bytes for {mb} MB ({:.0} bytes per MB of output)",
            on_disk as f64 / mb as f64
        );
        let (peak, own) = memory[pipe as usize];
        println!(
            "{label}: capture process after the cat: peak RSS {peak} kB, own memory (RssAnon) {own} kB"
        );
    }
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Lines as a web server logs them: times, ids, paths, statuses. Returns
/// how many.
fn write_log_lines(path: &Path, bytes: usize) -> u64 {
    let mut out = std::io::BufWriter::new(fs::File::create(path).unwrap());
    let mut written = 0;
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut n = 0u64;
    while written < bytes {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        n += 1;
        let line = format!(
            "2026-11-29T12:{:02}:{:02}.{:03}Z INFO http request_id={:016x} method={} path=/api/v1/items/{} status={} duration_ms={}\n",
            (n / 60_000) % 60,
            (n / 1000) % 60,
            n % 1000,
            rng,
            ["GET", "POST", "PUT"][(rng % 3) as usize],
            rng % 100_000,
            [200, 200, 200, 404, 500][(rng % 5) as usize],
            rng % 900,
        );
        out.write_all(line.as_bytes()).unwrap();
        written += line.len();
    }
    n
}

struct Run {
    took: Duration,
    tmux_cpu: Duration,
    /// `None` where the kernel does not count it.
    tmux_waited: Option<Duration>,
    /// What a capture kept.
    segments: Option<Segments>,
    memory_kb: (u64, u64),
}

/// What the pane's output is piped into.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pipe {
    None,
    DevNull,
    Capture,
    /// Capture, the `cat` between a command's marks.
    CaptureMarked,
}

impl Pipe {
    const ALL: [Pipe; 4] = [
        Pipe::None,
        Pipe::DevNull,
        Pipe::Capture,
        Pipe::CaptureMarked,
    ];

    fn label(self) -> &'static str {
        match self {
            Pipe::None => "without capture",
            Pipe::DevNull => "pipe-pane to /dev/null",
            Pipe::Capture => "with capture",
            Pipe::CaptureMarked => "with capture, marked as a command",
        }
    }
}

/// The marks bash's hook prints around a command (`OSC 133` with the shell
/// session and the command's number): before it runs (`PS0`) and before
/// the next prompt.
const MARKS: [&str; 2] = ["133;C;ta=bench/2", "133;D;ta=bench/2"];

fn cat_in_pane(bin: &Path, dir: &Path, file: &Path, pipe: Pipe, round: usize) -> Run {
    let capture = matches!(pipe, Pipe::Capture | Pipe::CaptureMarked);
    let home = dir.join(format!("home-{pipe:?}-{round}"));
    let config = home.join("config/tmux-audit");
    fs::create_dir_all(&config).unwrap();
    fs::write(config.join("config.toml"), "[capture]\nenabled = true\n").unwrap();
    let socket = format!("ta-bench-capture-{}-{pipe:?}-{round}", std::process::id());
    let tmux = |args: &[&str]| {
        let out = Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null"])
            .args(args)
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_STATE_HOME", home.join("state"))
            .output()
            .unwrap();
        assert!(out.status.success(), "tmux {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let result = home.join("took-ns");
    let [start, end] = match pipe {
        Pipe::CaptureMarked => MARKS.map(|mark| format!(r"printf '\033]{mark}\007'; ")),
        _ => Default::default(),
    };
    let script = format!(
        "tmux -L {socket} wait-for go; {start}s=$(date +%s%N); cat {}; e=$(date +%s%N); {end}echo $((e - s)) > {}; tmux -L {socket} wait-for -S done; tmux -L {socket} wait-for finish",
        file.display(),
        result.display()
    );
    let pane = tmux(&[
        "new-session",
        "-d",
        "-x",
        "200",
        "-y",
        "50",
        "-P",
        "-F",
        "#{pane_id}",
        &script,
    ]);
    let server_pid = tmux(&["display-message", "-p", "#{pid}"]);
    let command = match pipe {
        Pipe::None => None,
        Pipe::DevNull => Some("exec cat > /dev/null".to_string()),
        Pipe::Capture | Pipe::CaptureMarked => Some(format!(
            "exec '{}' capture --pane '{pane}' --server-pid '{server_pid}'",
            bin.display()
        )),
    };
    if let Some(command) = command {
        tmux(&["pipe-pane", "-o", "-t", &pane, &command]);
    }
    let cpu_before = cpu_time(&server_pid);
    let waited_before = run_queue_wait(&server_pid);
    tmux(&["wait-for", "-S", "go"]);
    tmux(&["wait-for", "done"]);
    let tmux_cpu = cpu_time(&server_pid).saturating_sub(cpu_before);
    let tmux_waited = run_queue_wait(&server_pid)
        .zip(waited_before)
        .map(|(after, before)| after.saturating_sub(before));
    let took = Duration::from_nanos(fs::read_to_string(&result).unwrap().trim().parse().unwrap());
    let mut memory_kb = (0, 0);
    if let Some(pid) = capture.then(|| capture_pid(&pane)).flatten() {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        memory_kb = (field("VmHWM:"), field("RssAnon:"));
    }
    // The pane's command ends, as a user's does: tmux hands the pipe what
    // it holds before it closes the pane (a `kill-server` would drop it),
    // and the server ends with its last pane.
    tmux(&["wait-for", "-S", "finish"]);
    let server_runs = || {
        Command::new("tmux")
            .args(["-L", &socket, "list-sessions"])
            .output()
            .is_ok_and(|out| out.status.success())
    };
    // The capture process ends at the end of its pipe: wait for its last write.
    let deadline = Instant::now() + Duration::from_secs(60);
    while (server_runs() || capture && capture_pid(&pane).is_some()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if server_runs() {
        let _ = Command::new("tmux")
            .args(["-L", &socket, "kill-server"])
            .output();
    }
    // What is left: a capture process still writing after its minute, and
    // the merge of the spool each capture's first seal starts for later
    // (five minutes on).
    let mut left = our_processes(&format!("{}/", home.display()));
    left.extend(capture.then(|| capture_pid(&pane)).flatten());
    for pid in left {
        let _ = Command::new("kill").arg(pid.to_string()).output();
    }
    Run {
        took,
        tmux_cpu,
        tmux_waited,
        segments: capture.then(|| segments_in(&home.join("data"), true)),
        memory_kb,
    }
}

/// The capture process of `pane` of this benchmark, if it runs.
fn capture_pid(pane: &str) -> Option<u32> {
    our_processes(&format!("capture\0--pane\0{pane}\0"))
        .into_iter()
        .next()
}

/// The processes of this benchmark's `tmux-audit` whose command line holds
/// `needle`.
fn our_processes(needle: &str) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = fs::read(e.path().join("cmdline")).ok()?;
            let exe = fs::read_link(e.path().join("exe")).ok()?;
            (exe.ends_with("release/tmux-audit")
                && memchr::memmem::find(&cmdline, needle.as_bytes()).is_some())
            .then_some(pid)
        })
        .collect()
}

/// What the segments under a directory hold.
#[derive(Default)]
struct Segments {
    /// Their bytes on disk.
    on_disk: u64,
    /// The output bytes their gaps say were lost (dropped while the
    /// writer was behind).
    lost: u64,
    /// The output bytes they keep.
    kept: u64,
    /// The output bytes the per-command cap counted and did not keep.
    cut: u64,
}

/// The segments under `dir`: their bytes on disk, and (`read`: decoded
/// for it) what they lost, kept and counted.
fn segments_in(dir: &Path, read: bool) -> Segments {
    use tmux_audit::capture::{cap, segment};
    let mut all = Segments::default();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            let under = segments_in(&path, read);
            all.on_disk += under.on_disk;
            all.lost += under.lost;
            all.kept += under.kept;
            all.cut += under.cut;
        } else if path.extension().is_some_and(|e| e == "seg") {
            all.on_disk += entry.metadata().map(|m| m.len()).unwrap_or(0);
            if !read {
                continue;
            }
            for record in segment::read(&path).map(|s| s.records).unwrap_or_default() {
                match record.kind {
                    segment::GAP => all.lost += record.lost(),
                    segment::OUTPUT => all.kept += record.payload.len() as u64,
                    segment::CUT => all.cut += cap::cut_of(&record.payload).map_or(0, |c| c.0),
                    _ => {}
                }
            }
        }
    }
    all
}
