//! `decode_request` never panics and refuses in one line, on arbitrary and
//! on near-valid input (stable counterpart of `fuzz/fuzz_targets/api_request.rs`).
//!
//! A seeded generator instead of proptest (this crate has no proptest
//! dev-dependency): 12,000 cases of random bytes, random paths, and valid
//! requests with mutated bodies, fields and path segments.

use bulkhead_api::{decode_request, encode_request, Command, EndpointSpec, NetworkSpec};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
}

const METHODS: &[&str] = &["GET", "POST", "DELETE", "PUT", "PATCH", "", "get"];
const PATHS: &[&str] = &[
    "/v1/health",
    "/v1/networks",
    "/v1/networks/n",
    "/v1/namespaces",
    "/v1/namespaces/x",
    "/v1/endpoints",
    "/v1/endpoints/e",
    "/v1/endpoints/e/acls",
    "/v1/endpoints/e/acls/r",
    "/v1/trace",
    "/v1/import",
    "/v1/",
    "/v1//",
    "/v2/networks",
    "/v1/endpoints/%zz",
    "/v1/endpoints/%C3%28",
    "/v1/networks?x=1",
    "",
    "/",
];
const BODIES: &[&str] = &[
    r#"{"name":"n","driver":"nat","subnet":"10.0.0.0/24","vni":4096}"#,
    r#"{"name":"x","isolation":"vm"}"#,
    r#"{"name":"e","network":"n","namespace":"x","publish":["80:80"],"ip":null}"#,
    r#"{"direction":"in","action":"allow","local_ports":[80,"1-2"],"priority":1e400}"#,
    r#"{"from":"a","to":"b","protocol":6,"port":-1}"#,
    r#"{"Networks":[{"Name":"n"}]}"#,
    "null",
    "[]",
    "{}",
    "\"\"",
    "{\"a\":",
];
const JUNK: &[&str] = &[
    "null",
    "true",
    "[]",
    "{}",
    "-0",
    "1e999",
    "18446744073709551616",
    "\"\\u0000\"",
    "[[1]]",
    "{\"x\":{}}",
    "\"\u{202e}\"",
    "\"a\\nb\"",
];

fn mutate(rng: &mut Rng, body: &str) -> Vec<u8> {
    let mut b = body.as_bytes().to_vec();
    match rng.below(5) {
        0 if !b.is_empty() => {
            let at = rng.below(b.len());
            b.truncate(at);
        }
        1 if !b.is_empty() => {
            for _ in 0..=rng.below(4) {
                let at = rng.below(b.len());
                b[at] = rng.next() as u8;
            }
        }
        2 => {
            // Replace one value with junk of another type.
            let text = String::from_utf8_lossy(&b).into_owned();
            if let Some(colon) = text.find(':') {
                let end = text[colon..]
                    .find([',', '}'])
                    .map_or(text.len(), |e| colon + e);
                b = format!("{}:{}{}", &text[..colon], rng.pick(JUNK), &text[end..]).into_bytes();
            }
        }
        3 => b
            .splice(
                1.min(b.len())..1.min(b.len()),
                br#""zz":1,"#.iter().copied(),
            )
            .for_each(drop),
        _ => b.extend(rng.bytes(8)),
    }
    b
}

#[test]
fn decode_request_never_panics() {
    let mut rng = Rng(0x5eed_0000_0000_0bad);
    for case in 0..12_000 {
        let method = rng.pick(METHODS);
        let (path, body) = match case % 3 {
            0 => (
                String::from_utf8_lossy(&rng.bytes(24)).into_owned(),
                rng.bytes(64),
            ),
            1 => {
                let mut p = rng.pick(PATHS).to_owned();
                if rng.below(3) == 0 {
                    p.push_str(&String::from_utf8_lossy(&rng.bytes(6)));
                }
                (p, rng.bytes(16))
            }
            _ => {
                let body = rng.pick(BODIES);
                (rng.pick(PATHS).to_owned(), mutate(&mut rng, body))
            }
        };
        let got = std::panic::catch_unwind(|| decode_request(method, &path, &body));
        let got = got.unwrap_or_else(|_| {
            panic!(
                "case {case}: panicked on {method} {path:?} {:?}",
                String::from_utf8_lossy(&body)
            )
        });
        if let Err(e) = got {
            assert!(!e.message.contains('\n'), "case {case}: {e:?}");
            assert!(!e.message.is_empty(), "case {case}: empty message");
        }
    }
}

#[test]
fn encoded_requests_round_trip_with_hostile_names() {
    let mut rng = Rng(7);
    for _ in 0..2_000 {
        let name = String::from_utf8_lossy(&rng.bytes(12)).into_owned();
        if name.is_empty() {
            continue; // see empty_names_do_not_change_the_route
        }
        let cmds = [
            Command::NetworkInspect { name: name.clone() },
            Command::AclRemove {
                endpoint: name.clone(),
                id: name.clone(),
            },
            Command::NetworkCreate(NetworkSpec {
                name: name.clone(),
                ..Default::default()
            }),
            Command::EndpointCreate(EndpointSpec {
                name: name.clone(),
                ..Default::default()
            }),
        ];
        for cmd in cmds {
            let enc = encode_request(&cmd).expect("encode");
            let body = enc.body.unwrap_or_default();
            let back = decode_request(enc.method, &enc.path, &body);
            assert_eq!(back, Ok(cmd));
        }
    }
}

/// `encode_request` of an empty name gives `/v1/networks/`, which the
/// decoder (tolerating one trailing `/`) reads as a different route.
#[test]
fn empty_names_do_not_change_the_route() {
    for cmd in [
        Command::NetworkInspect {
            name: String::new(),
        },
        Command::EndpointInspect {
            name: String::new(),
        },
    ] {
        let enc = encode_request(&cmd).expect("encode");
        // Refusing is fine too; decoding to another command is not.
        if let Ok(back) = decode_request(enc.method, &enc.path, &[]) {
            assert_eq!(back, cmd);
        }
    }
}
