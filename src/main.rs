//! The `stationd` command: the daemon and the administrator's and technician's tools.

use clap::{Parser, Subcommand};
use stationd::config::Config;
use stationd::{cli, exit_code, logging};
use std::path::PathBuf;
use std::process::ExitCode;

const DEFAULT_CONFIG: &str = "/etc/stationd/stationd.toml";

#[derive(Parser)]
#[command(
    name = "stationd",
    version,
    about = "Patrol-station daemon: local hardware to central dispatch, store-and-forward"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (what the systemd unit starts).
    Run {
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Look hardware profiles up here first (before the config's directory's hw-profiles/,
        /// /etc/stationd/hw-profiles and /usr/share/stationd/hw-profiles).
        #[arg(long = "profile-dir", value_name = "DIR")]
        profile_dirs: Vec<PathBuf>,
    },
    /// Validate the configuration with its hardware profile and exit 0 (valid) or 1 (errors,
    /// with file:line); say what of the profile this machine lacks. With --profile FILE,
    /// validate one hardware profile on its own.
    CheckConfig {
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long = "profile-dir", value_name = "DIR")]
        profile_dirs: Vec<PathBuf>,
        /// Check this hardware profile file alone instead of a station config.
        #[arg(long, value_name = "FILE", conflicts_with = "config")]
        profile: Option<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Print udev rules giving the USB serial adapters of hardware profiles stable names
    /// (/dev/stationd/NAME): of the given profile files, or of the config's profile.
    UdevRules {
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long = "profile-dir", value_name = "DIR")]
        profile_dirs: Vec<PathBuf>,
        /// Hardware profile files (default: the profile the config names).
        profiles: Vec<PathBuf>,
    },
    /// Asks the running daemon to read its configuration (and profile) again and apply it:
    /// changed devices restart, the others run on; an invalid file changes nothing. Exit 1 when
    /// the file was rejected. What `systemctl reload stationd` and SIGHUP do.
    Reload {
        #[command(flatten)]
        view: ViewArgs,
    },
    /// The running daemon: uplink, uptime, backlog per class, last error, device states.
    Status {
        #[command(flatten)]
        view: ViewArgs,
    },
    /// The running station's health as named checks (daemon, uplink, backlog, outbox, disk,
    /// each configured device, clock); exit 1 when one failed, 69 when the daemon is not running.
    Check {
        #[command(flatten)]
        view: ViewArgs,
    },
    /// Each device: driver, state, last seen, counters.
    Devices {
        #[command(flatten)]
        view: ViewArgs,
    },
    /// The outbox: rows per class, oldest age, bytes, evictions. Asks the running daemon; with
    /// --config or --file it reads the file itself (for a stopped daemon; needs read access).
    Outbox {
        #[command(flatten)]
        view: ViewArgs,
        /// Read the outbox of this station config directly instead of asking the daemon.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Read this outbox file directly instead of asking the daemon.
        #[arg(long, conflicts_with = "config")]
        file: Option<PathBuf>,
    },
    /// Dispatch's side of a command: print the JSON message to publish on P/cmd/NAME,
    /// signed with dispatch's Ed25519 key (docs/CONTRACT.md, "Commands").
    #[command(name = "sign-command")]
    Sign {
        /// Dispatch's private key, PEM PKCS#8 (openssl genpkey -algorithm ed25519); without
        /// it the command is unsigned (only for stations with allow_unsigned = true).
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// The station the command is for (the signature binds it).
        #[arg(long)]
        station: String,
        /// Default: cli-<unix ms>-<random>.
        #[arg(long = "request-id")]
        request_id: Option<String>,
        /// Seconds until the command expires.
        #[arg(long = "ttl-s", default_value_t = 300)]
        ttl_s: u64,
        /// The command, e.g. ping or jt808.text.
        name: String,
        /// Its arguments as a JSON object, e.g. '{"car":"car-02","text":"..."}'.
        args: Option<String>,
    },
    /// Incidents central sent the station's crews to: each crew's paths, acknowledgement,
    /// arrival; the response-time figures.
    Dispatch {
        #[command(flatten)]
        view: ViewArgs,
    },
    /// Teams on duty, crews and their readiness, who is present and from which signal, the
    /// rotation's exceptions (names included: this view stays on the box).
    Staffing {
        #[command(flatten)]
        view: ViewArgs,
    },
    /// Say on the box that someone is on or off duty (recorded with your user name).
    Duty {
        #[command(flatten)]
        socket: SocketArg,
        /// `on` or `off`.
        #[arg(value_parser = ["on", "off"])]
        state: String,
        /// The person's id on the roster.
        person: String,
        /// Why, for the record.
        #[arg(long)]
        note: Option<String>,
    },
    /// The station's roster of people.
    Roster {
        #[command(subcommand)]
        command: RosterCommand,
    },
    /// Crews: a car and its people.
    Crew {
        #[command(subcommand)]
        command: CrewCommand,
    },
    /// Exceptions to the rotation: sick, leave, a swap to another team.
    Override {
        #[command(subcommand)]
        command: OverrideCommand,
    },
    /// The equipment register: counts per class and state, each item with who has it and why
    /// it is in its state; or change it (import, checkout, checkin, fault, mark).
    #[command(args_conflicts_with_subcommands = true)]
    Equipment {
        #[command(subcommand)]
        command: Option<EquipmentCommand>,
        #[command(flatten)]
        view: ViewArgs,
        /// Only this class (`radios`, `recorders`, …).
        #[arg(long)]
        class: Option<String>,
        /// Only this state (`fault`, `checked_out`, …).
        #[arg(long)]
        state: Option<String>,
    },
    /// The evidence index of the body-cam docks (docs/OPERATIONS.md).
    Evidence {
        #[command(subcommand)]
        command: EvidenceCommand,
    },
    /// The whole station simulated on one command: inputs, the daemon, central dispatch
    /// (an embedded MQTT broker) and a live view of what central receives. Nothing to install.
    #[cfg(feature = "demo")]
    Demo {
        /// Stop after this many seconds (0: until Ctrl-C).
        #[arg(long, default_value_t = 0)]
        seconds: u64,
        /// Seconds the uplink stays up between simulated outages.
        #[arg(long, default_value_t = 20)]
        up: u64,
        /// Seconds each simulated outage lasts (0: no outages).
        #[arg(long, default_value_t = 10)]
        down: u64,
        /// Print one status line per second instead of redrawing the screen.
        #[arg(long)]
        plain: bool,
    },
}

#[derive(Subcommand)]
enum EvidenceCommand {
    /// Walk the hash chain of evidence.db and hash every indexed file again; exit 1 and say
    /// what is wrong on any mismatch (an edited or deleted entry, a changed or missing file).
    Verify {
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long = "profile-dir", value_name = "DIR")]
        profile_dirs: Vec<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum RosterCommand {
    /// Replace the roster with FILE: CSV (columns id,name,role,team[,card]) or TOML
    /// ([[person]] tables); checked before anything changes, errors name the row.
    Import {
        #[command(flatten)]
        socket: SocketArg,
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum EquipmentCommand {
    /// Replace the register with FILE: CSV (columns id,class,name,serial,device,car,
    /// next_maintenance) or TOML ([[item]] tables); checked first, errors name the row.
    Import {
        #[command(flatten)]
        socket: SocketArg,
        file: PathBuf,
    },
    /// ITEM goes out with PERSON (a car's kit puts them in its crew).
    Checkout {
        #[command(flatten)]
        socket: SocketArg,
        item: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// ITEM is back, in service.
    Checkin {
        #[command(flatten)]
        socket: SocketArg,
        item: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// ITEM is in fault (until checked in or marked in_service).
    Fault {
        #[command(flatten)]
        socket: SocketArg,
        item: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Say ITEM is in_service, fault or lost; optionally set its next maintenance date.
    Mark {
        #[command(flatten)]
        socket: SocketArg,
        item: String,
        #[arg(value_parser = ["in_service", "fault", "lost"])]
        state: String,
        #[arg(long)]
        note: Option<String>,
        /// YYYY-MM-DD.
        #[arg(long = "next-maintenance")]
        next_maintenance: Option<String>,
    },
}

#[derive(Subcommand)]
enum CrewCommand {
    /// Set CAR's crew to the people named (none: stand the crew down).
    Set {
        #[command(flatten)]
        socket: SocketArg,
        car: String,
        members: Vec<String>,
    },
}

#[derive(Subcommand)]
enum OverrideCommand {
    /// PERSON is sick, on leave, or works with another team (swap --team T) for a while.
    Add {
        #[command(flatten)]
        socket: SocketArg,
        person: String,
        #[arg(value_parser = ["sick", "leave", "swap"])]
        kind: String,
        /// The team they work with (a swap).
        #[arg(long)]
        team: Option<String>,
        /// When it starts (RFC 3339, e.g. 2026-12-03T08:00:00+08:00); default now.
        #[arg(long)]
        from: Option<String>,
        /// When it ends (RFC 3339).
        #[arg(long, conflicts_with = "hours")]
        until: Option<String>,
        /// Or how many hours it lasts.
        #[arg(long)]
        hours: Option<f64>,
        /// A note kept on the box (never sent to central).
        #[arg(long)]
        note: Option<String>,
    },
    /// Remove exception ID (stationd staffing lists them).
    Remove {
        #[command(flatten)]
        socket: SocketArg,
        id: i64,
    },
}

/// The daemon's control socket, for the commands that change the station's records.
#[derive(clap::Args)]
struct SocketArg {
    /// The daemon's control socket [default: $STATIOND_CONTROL_SOCKET or /run/stationd/control.sock]
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
}

impl SocketArg {
    fn path(&self) -> PathBuf {
        self.socket
            .clone()
            .unwrap_or_else(stationd::control::default_socket_path)
    }
}

/// `run` and `demo` hold sockets; the other commands only print.
fn runs_the_daemon(c: &Command) -> bool {
    match c {
        Command::Run { .. } => true,
        #[cfg(feature = "demo")]
        Command::Demo { .. } => true,
        _ => false,
    }
}

/// Options of the technician's views.
#[derive(clap::Args)]
struct ViewArgs {
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
    /// The daemon's control socket [default: $STATIOND_CONTROL_SOCKET or /run/stationd/control.sock]
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
}

impl ViewArgs {
    fn socket(&self) -> PathBuf {
        self.socket
            .clone()
            .unwrap_or_else(stationd::control::default_socket_path)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !runs_the_daemon(&cli.command) {
        // The commands print tables that get piped into `head` or `grep -q`: a closed pipe ends
        // them quietly, as it does any Unix tool. (Rust ignores SIGPIPE; the daemon keeps that,
        // so a closed socket is an error it handles, not its death.)
        // SAFETY: called before any thread is started; restores the default disposition.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match cli.command {
        Command::CheckConfig {
            config,
            profile_dirs,
            profile,
            json,
        } => ExitCode::from(match profile {
            Some(p) => cli::check_config::check_profile(&p, json),
            None => cli::check_config::check_config(&config, &profile_dirs, json),
        }),
        Command::UdevRules {
            config,
            profile_dirs,
            profiles,
        } => ExitCode::from(cli::check_config::udev_rules(
            &config,
            &profile_dirs,
            &profiles,
        )),
        Command::Run {
            config,
            profile_dirs,
        } => {
            let cfg = match Config::load_with(&config, &profile_dirs) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("stationd: invalid configuration: {e}");
                    return ExitCode::from(exit_code::CONFIG as u8);
                }
            };
            logging::init(Some(cfg.station.id.as_str()));
            let rt = stationd::daemon::runtime();
            let rt = match rt {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("stationd: cannot start the async runtime: {e}");
                    return ExitCode::from(exit_code::SOFTWARE as u8);
                }
            };
            match rt.block_on(stationd::daemon::run(cfg)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(event = "daemon.failed", error = %e, "stationd cannot run");
                    eprintln!("stationd: {e}");
                    ExitCode::from(e.exit_code() as u8)
                }
            }
        }
        #[cfg(feature = "demo")]
        Command::Demo {
            seconds,
            up,
            down,
            plain,
        } => {
            match stationd::demo::run(stationd::demo::DemoOptions {
                seconds,
                up_secs: up.max(1),
                down_secs: down,
                plain,
            }) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("stationd demo: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Sign {
            key,
            station,
            request_id,
            ttl_s,
            name,
            args,
        } => ExitCode::from(cli::sign_command::sign_command(
            &cli::sign_command::SignArgs {
                key,
                station,
                name,
                args,
                request_id,
                ttl_s,
            },
        )),
        Command::Evidence {
            command:
                EvidenceCommand::Verify {
                    config,
                    profile_dirs,
                    json,
                },
        } => ExitCode::from(cli::evidence::verify_command(&config, &profile_dirs, json)),
        Command::Status { view } => ExitCode::from(cli::views::status(&view.socket(), view.json)),
        Command::Reload { view } => ExitCode::from(cli::reload::reload(&view.socket(), view.json)),
        Command::Equipment {
            command,
            view,
            class,
            state,
        } => ExitCode::from(match command {
            None => cli::equipment::show(
                &view.socket(),
                class.as_deref(),
                state.as_deref(),
                view.json,
            ),
            Some(EquipmentCommand::Import { socket, file }) => {
                cli::equipment::import(&socket.path(), &file)
            }
            Some(EquipmentCommand::Checkout {
                socket,
                item,
                to,
                note,
            }) => cli::equipment::mark(&socket.path(), &item, "checked_out", Some(to), note, None),
            Some(EquipmentCommand::Checkin { socket, item, note }) => {
                cli::equipment::mark(&socket.path(), &item, "in_service", None, note, None)
            }
            Some(EquipmentCommand::Fault { socket, item, note }) => {
                cli::equipment::mark(&socket.path(), &item, "fault", None, note, None)
            }
            Some(EquipmentCommand::Mark {
                socket,
                item,
                state,
                note,
                next_maintenance,
            }) => cli::equipment::mark(&socket.path(), &item, &state, None, note, next_maintenance),
        }),
        Command::Dispatch { view } => {
            ExitCode::from(cli::dispatch::show(&view.socket(), view.json))
        }
        Command::Staffing { view } => {
            ExitCode::from(cli::staffing::show(&view.socket(), view.json))
        }
        Command::Duty {
            socket,
            state,
            person,
            note,
        } => ExitCode::from(cli::staffing::duty(
            &socket.path(),
            &person,
            state == "on",
            note,
        )),
        Command::Roster {
            command: RosterCommand::Import { socket, file },
        } => ExitCode::from(cli::staffing::roster_import(&socket.path(), &file)),
        Command::Crew {
            command:
                CrewCommand::Set {
                    socket,
                    car,
                    members,
                },
        } => ExitCode::from(cli::staffing::crew_set(&socket.path(), &car, members)),
        Command::Override {
            command:
                OverrideCommand::Add {
                    socket,
                    person,
                    kind,
                    team,
                    from,
                    until,
                    hours,
                    note,
                },
        } => ExitCode::from(cli::staffing::override_add(
            &socket.path(),
            cli::staffing::OverrideArgs {
                person,
                kind,
                team,
                from,
                until,
                hours,
                note,
            },
        )),
        Command::Override {
            command: OverrideCommand::Remove { socket, id },
        } => ExitCode::from(cli::staffing::override_remove(&socket.path(), id)),
        Command::Devices { view } => ExitCode::from(cli::views::devices(&view.socket(), view.json)),
        Command::Check { view } => {
            ExitCode::from(cli::station_check::check(&view.socket(), view.json))
        }
        Command::Outbox { view, config, file } => {
            let path = match (config, file) {
                (None, None) => {
                    return ExitCode::from(cli::views::outbox(&view.socket(), view.json))
                }
                (_, Some(f)) => f,
                (Some(c), None) => match Config::load(&c) {
                    Ok(cfg) => cfg.buffer.path,
                    Err(e) => {
                        eprintln!("{e}");
                        return ExitCode::from(exit_code::CONFIG as u8);
                    }
                },
            };
            ExitCode::from(cli::views::outbox_file(&path, view.json))
        }
    }
}
