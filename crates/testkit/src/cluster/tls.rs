//! Test certificates for etcd's TLS mode, made with the `openssl` CLI in a
//! temporary directory: a CA, a server certificate for etcd's underlay
//! address (and 127.0.0.1), a client certificate the CA signed (what a
//! node presents), and a client certificate of a second, untrusted CA (what
//! an impostor presents). P-256 keys in PKCS#8, valid for one day: both
//! etcd (Go) and rustls read them.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::checked;

/// The files of the test PKI (all PEM).
#[derive(Debug)]
pub struct Tls {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A client certificate and key signed by another CA than [`Tls::ca`].
    pub rogue_cert: PathBuf,
    pub rogue_key: PathBuf,
    _dir: tempfile::TempDir,
}

fn openssl(args: &[&str]) {
    checked(
        Command::new("openssl").args(args),
        &format!("openssl {}", args.join(" ")),
    );
}

/// A self-signed CA `name` in `dir`: `(cert, key)`.
fn self_signed_ca(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (crt, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "1",
        "-subj",
        &format!("/CN={name}"),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout",
        s(&key),
        "-out",
        s(&crt),
    ]);
    (crt, key)
}

/// A leaf `name` in `dir` signed by `(ca_crt, ca_key)` with extensions
/// `ext` (openssl extension lines): `(cert, key)`.
fn leaf(dir: &Path, name: &str, ca: &(PathBuf, PathBuf), ext: &str) -> (PathBuf, PathBuf) {
    let (crt, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let (csr, extf) = (
        dir.join(format!("{name}.csr")),
        dir.join(format!("{name}.ext")),
    );
    std::fs::write(&extf, ext).expect("write ext");
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        &format!("/CN={name}"),
        "-keyout",
        s(&key),
        "-out",
        s(&csr),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        s(&csr),
        "-CA",
        s(&ca.0),
        "-CAkey",
        s(&ca.1),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        s(&extf),
        "-out",
        s(&crt),
    ]);
    (crt, key)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

impl Tls {
    /// The PKI for an etcd serving on `server_ip`.
    pub fn generate(server_ip: Ipv4Addr) -> Tls {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let ca = self_signed_ca(d, "bulkhead-test-ca");
        let server = leaf(
            d,
            "etcd",
            &ca,
            &format!(
                "subjectAltName=IP:{server_ip},IP:127.0.0.1\n\
                 keyUsage=critical,digitalSignature\n\
                 extendedKeyUsage=serverAuth,clientAuth\n"
            ),
        );
        let client_ext = "keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n";
        let client = leaf(d, "node", &ca, client_ext);
        let rogue_ca = self_signed_ca(d, "rogue-ca");
        let rogue = leaf(d, "rogue", &rogue_ca, client_ext);
        Tls {
            ca: ca.0,
            server_cert: server.0,
            server_key: server.1,
            client_cert: client.0,
            client_key: client.1,
            rogue_cert: rogue.0,
            rogue_key: rogue.1,
            _dir: dir,
        }
    }
}
