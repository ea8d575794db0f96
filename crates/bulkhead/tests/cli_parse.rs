//! The command line accepts exactly spec §8's contract: every command and
//! flag parses into the right API command, and bad flags are refused.

use bulkhead::cli::{Cli, DemoArgs, OutputFormat, TopCommand};
use bulkhead::commands::{plan, Plan};
use bulkhead_api::*;
use clap::error::ErrorKind;
use clap::Parser;
use std::path::Path;

fn parse(args: &[&str]) -> Cli {
    let argv = std::iter::once("bulkhead").chain(args.iter().copied());
    Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn api(args: &[&str]) -> Command {
    match plan(parse(args).command).unwrap() {
        Plan::Api(cmd) => *cmd,
        other => panic!("{args:?}: not an API command: {other:?}"),
    }
}

fn refused(args: &[&str]) -> ErrorKind {
    let argv = std::iter::once("bulkhead").chain(args.iter().copied());
    match Cli::try_parse_from(argv) {
        Ok(cli) => panic!("{args:?} was accepted: {cli:?}"),
        Err(e) => e.kind(),
    }
}

#[test]
fn global_flags_have_defaults_and_can_be_set() {
    let cli = parse(&["network", "ls"]);
    assert_eq!(cli.socket, Path::new("/run/bulkhead/bulkhead.sock"));
    assert_eq!(cli.output, OutputFormat::Table);
    let cli = parse(&[
        "--socket",
        "/tmp/x.sock",
        "--output",
        "json",
        "network",
        "ls",
    ]);
    assert_eq!(cli.socket, Path::new("/tmp/x.sock"));
    assert_eq!(cli.output, OutputFormat::Json);
    let cli = parse(&["network", "ls", "--output", "json"]);
    assert_eq!(cli.output, OutputFormat::Json);
}

#[test]
fn network_commands() {
    let cmd = api(&[
        "network",
        "create",
        "web",
        "--driver",
        "overlay",
        "--subnet",
        "10.2.0.0/16",
        "--gateway",
        "10.2.0.1",
        "--uplink",
        "eth1",
        "--vni",
        "4096",
        "--acl-profile",
        "legacy",
    ]);
    assert_eq!(
        cmd,
        Command::NetworkCreate(NetworkSpec {
            name: "web".into(),
            driver: "overlay".into(),
            subnets: vec!["10.2.0.0/16".into()],
            gateway: Some("10.2.0.1".into()),
            uplink: Some("eth1".into()),
            vni: Some("4096".into()),
            acl_profile: Some("legacy".into()),
        })
    );
    for driver in ["nat", "transparent", "l2bridge", "l2tunnel", "overlay"] {
        let Command::NetworkCreate(r) = api(&["network", "create", "n", "--driver", driver]) else {
            panic!("wrong command")
        };
        assert_eq!(r.driver, driver);
        assert!(r.subnets.is_empty());
    }
    assert_eq!(api(&["network", "ls"]), Command::NetworkList);
    assert_eq!(
        api(&["network", "inspect", "web"]),
        Command::NetworkInspect { name: "web".into() }
    );
    assert_eq!(
        api(&["network", "rm", "web"]),
        Command::NetworkRemove { name: "web".into() }
    );
}

#[test]
fn namespace_commands_and_the_compartment_alias() {
    for word in ["namespace", "compartment"] {
        assert_eq!(
            api(&[word, "create", "pod", "--isolation", "vm"]),
            Command::NamespaceCreate(NamespaceSpec {
                name: "pod".into(),
                isolation: Some("vm".into()),
                ..NamespaceSpec::default()
            })
        );
        assert_eq!(api(&[word, "ls"]), Command::NamespaceList);
        assert_eq!(
            api(&[word, "inspect", "pod"]),
            Command::NamespaceInspect { name: "pod".into() }
        );
        assert_eq!(
            api(&[word, "rm", "pod"]),
            Command::NamespaceRemove { name: "pod".into() }
        );
    }
    for isolation in ["process", "hyperv"] {
        let Command::NamespaceCreate(r) =
            api(&["namespace", "create", "p", "--isolation", isolation])
        else {
            panic!("wrong command")
        };
        assert_eq!(r.isolation.as_deref(), Some(isolation));
    }
    let Command::NamespaceCreate(r) = api(&["namespace", "create", "p"]) else {
        panic!("wrong command")
    };
    assert_eq!(r.isolation, None);
}

#[test]
fn endpoint_commands_with_repeated_publish() {
    let cmd = api(&[
        "endpoint",
        "create",
        "a0",
        "--network",
        "web",
        "--namespace",
        "pod",
        "--ip",
        "172.30.0.2",
        "--mac",
        "02:42:ac:1e:00:02",
        "--publish",
        "8080:80",
        "--publish",
        "127.0.0.1:53:53/udp",
        "--acl-mode",
        "replace",
        "--tap-owner",
        "1000",
        "--tap-group",
        "100",
        "--tap-queues",
        "4",
    ]);
    assert_eq!(
        cmd,
        Command::EndpointCreate(EndpointSpec {
            name: "a0".into(),
            network: "web".into(),
            namespace: "pod".into(),
            ip: Some("172.30.0.2".into()),
            mac: Some("02:42:ac:1e:00:02".into()),
            publish: vec!["8080:80".into(), "127.0.0.1:53:53/udp".into()],
            acl_mode: Some("replace".into()),
            ifname: None,
            container_id: None,
            tap_owner: Some("1000".into()),
            tap_group: Some("100".into()),
            tap_queues: Some("4".into()),
        })
    );
    assert_eq!(api(&["endpoint", "ls"]), Command::EndpointList);
    assert_eq!(
        api(&["endpoint", "inspect", "a0"]),
        Command::EndpointInspect { name: "a0".into() }
    );
    assert_eq!(
        api(&["endpoint", "rm", "a0"]),
        Command::EndpointRemove { name: "a0".into() }
    );
}

#[test]
fn acl_commands() {
    let cmd = api(&[
        "acl",
        "add",
        "a0",
        "--direction",
        "in",
        "--action",
        "block",
        "--protocol",
        "tcp",
        "--local-ports",
        "80,8000-8080",
        "--remote-ports",
        "1024-65535",
        "--local-addresses",
        "172.30.0.2",
        "--remote-addresses",
        "10.0.0.0/8,192.168.0.0/16",
        "--priority",
        "100",
        "--rule-type",
        "switch",
        "--id",
        "deny-web",
    ]);
    assert_eq!(
        cmd,
        Command::AclAdd {
            endpoint: "a0".into(),
            rule: AclRuleSpec {
                direction: "in".into(),
                action: "block".into(),
                protocol: Some("tcp".into()),
                local_ports: Some("80,8000-8080".into()),
                remote_ports: Some("1024-65535".into()),
                local_addresses: Some("172.30.0.2".into()),
                remote_addresses: Some("10.0.0.0/8,192.168.0.0/16".into()),
                priority: Some("100".into()),
                rule_type: Some("switch".into()),
                id: Some("deny-web".into()),
            },
        }
    );
    let Command::AclAdd { rule, .. } = api(&[
        "acl",
        "add",
        "a0",
        "--direction",
        "out",
        "--action",
        "allow",
    ]) else {
        panic!("wrong command")
    };
    assert_eq!((rule.protocol, rule.rule_type, rule.id), (None, None, None));
    assert_eq!(
        api(&["acl", "ls", "a0"]),
        Command::AclList {
            endpoint: "a0".into()
        }
    );
    assert_eq!(
        api(&["acl", "ls", "a0", "--stats"]),
        Command::AclStats {
            endpoint: "a0".into()
        }
    );
    assert_eq!(
        api(&["acl", "rm", "a0", "deny-web"]),
        Command::AclRemove {
            endpoint: "a0".into(),
            id: "deny-web".into()
        }
    );
}

#[test]
fn trace_import_demo_exec_and_completions() {
    assert_eq!(
        api(&[
            "trace",
            "--from",
            "a0",
            "--to",
            "10.0.0.9",
            "--protocol",
            "udp",
            "--port",
            "53"
        ]),
        Command::Trace(TraceSpec {
            from: "a0".into(),
            to: "10.0.0.9".into(),
            protocol: "udp".into(),
            port: Some("53".into()),
            ..Default::default()
        })
    );
    assert_eq!(
        api(&[
            "trace",
            "--from",
            "a0",
            "--source-ip",
            "10.0.0.99",
            "--source-port",
            "68",
            "--to",
            "192.0.2.1:8080",
            "--protocol",
            "tcp",
            "--established",
        ]),
        Command::Trace(TraceSpec {
            from: "a0".into(),
            to: "192.0.2.1:8080".into(),
            protocol: "tcp".into(),
            port: None,
            source_ip: Some("10.0.0.99".into()),
            source_port: Some("68".into()),
            established: true,
        })
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hcn.json");
    std::fs::write(&file, br#"{"Networks":[{"Name":"x"}]}"#).unwrap();
    let Command::Import(req) = api(&["import", file.to_str().unwrap()]) else {
        panic!("wrong command")
    };
    assert_eq!(req.document["Networks"][0]["Name"], "x");
    assert!(matches!(
        plan(parse(&["demo"]).command).unwrap(),
        Plan::Demo(DemoArgs { vm: false })
    ));
    assert!(matches!(
        plan(parse(&["demo", "--vm"]).command).unwrap(),
        Plan::Demo(DemoArgs { vm: true })
    ));
    match plan(parse(&["exec", "pod", "--", "ip", "-br", "addr"]).command).unwrap() {
        Plan::Exec(args) => {
            assert_eq!(args.namespace, "pod");
            assert_eq!(args.command, ["ip", "-br", "addr"]);
        }
        other => panic!("{other:?}"),
    }
    for shell in ["bash", "zsh", "fish"] {
        assert!(matches!(
            parse(&["completions", shell]).command,
            TopCommand::Completions { .. }
        ));
    }
}

#[test]
fn import_file_errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    let e = plan(parse(&["import", missing.to_str().unwrap()]).command).unwrap_err();
    assert!(e.to_string().starts_with("cannot read "), "{e}");
    assert!(e.to_string().contains("No such file"), "{e}");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, b"{\n  \"a\": \n").unwrap();
    let e = plan(parse(&["import", bad.to_str().unwrap()]).command).unwrap_err();
    assert!(e.to_string().contains("is not valid JSON"), "{e}");
    assert!(!e.to_string().contains('\n'));
}

#[test]
fn bad_command_lines_are_refused() {
    use ErrorKind::*;
    let cases: &[(&[&str], ErrorKind)] = &[
        (&["network", "create", "n"], MissingRequiredArgument),
        (&["network", "create", "n", "--driver", "ics"], InvalidValue),
        (
            &[
                "network",
                "create",
                "n",
                "--driver",
                "nat",
                "--acl-profile",
                "old",
            ],
            InvalidValue,
        ),
        (
            &["network", "create", "n", "--driver", "nat", "--mtu", "9000"],
            UnknownArgument,
        ),
        (&["network", "list"], InvalidSubcommand),
        (&["network", "rm"], MissingRequiredArgument),
        (
            &["namespace", "create", "p", "--isolation", "container"],
            InvalidValue,
        ),
        (
            &["endpoint", "create", "e", "--network", "n"],
            MissingRequiredArgument,
        ),
        (
            &[
                "endpoint",
                "create",
                "e",
                "--network",
                "n",
                "--namespace",
                "p",
                "--acl-mode",
                "x",
            ],
            InvalidValue,
        ),
        (
            &[
                "acl",
                "add",
                "e",
                "--direction",
                "both",
                "--action",
                "allow",
            ],
            InvalidValue,
        ),
        (
            &["acl", "add", "e", "--direction", "in", "--action", "deny"],
            InvalidValue,
        ),
        (
            &["acl", "add", "e", "--direction", "in"],
            MissingRequiredArgument,
        ),
        (
            &[
                "acl",
                "add",
                "e",
                "--direction",
                "in",
                "--action",
                "allow",
                "--rule-type",
                "vfp",
            ],
            InvalidValue,
        ),
        (&["acl", "rm", "e"], MissingRequiredArgument),
        (&["exec", "pod"], MissingRequiredArgument),
        (&["exec", "pod", "ip", "addr"], UnknownArgument),
        (
            &["trace", "--from", "a", "--to", "b"],
            MissingRequiredArgument,
        ),
        (&["import"], MissingRequiredArgument),
        (&["--output", "yaml", "network", "ls"], InvalidValue),
        (&["completions", "tcsh"], InvalidValue),
        (&["frobnicate"], InvalidSubcommand),
    ];
    for (args, kind) in cases {
        assert_eq!(refused(args), *kind, "{args:?}");
    }
}

#[test]
fn usage_errors_become_one_line() {
    let e =
        Cli::try_parse_from(["bulkhead", "network", "create", "n", "--driver", "ics"]).unwrap_err();
    let line = bulkhead::usage_error_line(&e);
    assert!(!line.contains('\n'), "{line}");
    assert!(line.contains("ics"), "{line}");
    assert!(!line.starts_with("error:"), "{line}");
    let e = Cli::try_parse_from(["bulkhead", "acl", "add", "e", "--direction", "in"]).unwrap_err();
    let line = bulkhead::usage_error_line(&e);
    assert_eq!(
        line,
        "the following required arguments were not provided: --action <ACTION>; \
         see 'bulkhead acl add --help'"
    );
    let e = Cli::try_parse_from(["bulkhead", "network"]).unwrap_err();
    assert_eq!(
        bulkhead::usage_error_line(&e),
        "a subcommand is required; see 'bulkhead network --help'"
    );
}
