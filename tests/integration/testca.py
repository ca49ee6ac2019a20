"""A certificate authority made with the openssl CLI for a test: a CA
certificate and leaf certificates it issues (or that sign themselves) for
given names, valid, expired or not yet valid, TLS server contexts with them,
and the TLSA records (DANE) that match them. Files go into the test's
temporary directory; nothing is installed into the system's trust store (the
gateway gets the CA file by config)."""
import base64
import hashlib
import ssl
import subprocess

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(*args, cwd=None):
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60, cwd=cwd)


class TestCA:
    __test__ = False  # not a pytest class

    def __init__(self, directory, name="mailgate test CA"):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cert, self.key = self.dir / "ca.pem", self.dir / "ca.key"
        _openssl("req", "-x509", *_EC, "-days", "2", "-subj", f"/CN={name}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                 "-keyout", str(self.key), "-out", str(self.cert))
        (self.dir / "index.txt").write_text("")
        (self.dir / "serial").write_text("1000\n")
        self.config = self.dir / "ca.cnf"
        self.config.write_text(
            "[ca]\ndefault_ca = test_ca\n"
            "[test_ca]\n"
            f"database = {self.dir}/index.txt\nnew_certs_dir = {self.dir}\n"
            f"certificate = {self.cert}\nprivate_key = {self.key}\nserial = {self.dir}/serial\n"
            "default_md = sha256\npolicy = any_policy\nunique_subject = no\n"
            "[any_policy]\ncommonName = supplied\n")
        self.count = 0

    def issue(self, cn, sans=(), expired=False, self_signed=False):
        """A leaf certificate for `cn` with DNS names `sans` (subjectAltName;
        none: no SAN at all). Returns (cert path, key path)."""
        self.count += 1
        stem = self.dir / f"leaf{self.count}"
        cert, key, csr, ext = (stem.with_suffix(".pem"), stem.with_suffix(".key"),
                               stem.with_suffix(".csr"), stem.with_suffix(".ext"))
        lines = ["[leaf]", "basicConstraints = CA:FALSE", "keyUsage = digitalSignature",
                 "extendedKeyUsage = serverAuth"]
        if sans:
            lines.append("subjectAltName = " + ",".join(
                ("IP:" if s.replace(".", "").isdigit() else "DNS:") + s for s in sans))
        # Also a config `openssl req` accepts (it needs a [req] section).
        ext.write_text("[req]\ndistinguished_name = dn\n[dn]\n" + "\n".join(lines) + "\n")
        if self_signed:
            _openssl("req", "-x509", *_EC, "-days", "2", "-subj", f"/CN={cn}",
                     "-config", str(ext), "-extensions", "leaf",
                     "-keyout", str(key), "-out", str(cert))
            return cert, key
        _openssl("req", "-new", *_EC, "-subj", f"/CN={cn}", "-keyout", str(key), "-out", str(csr))
        dates = (["-startdate", "20200101000000Z", "-enddate", "20200201000000Z"] if expired
                 else ["-days", "2"])
        _openssl("ca", "-batch", "-notext", "-config", str(self.config), "-in", str(csr),
                 "-out", str(cert), "-extfile", str(ext), "-extensions", "leaf", *dates)
        return cert, key

    def chain(self, cert):
        """A file with the leaf `cert` followed by the CA certificate, for a
        server that must present its trust anchor (DANE-TA, RFC 7671 §5.2.2)."""
        path = cert.with_suffix(".chain.pem")
        path.write_text(cert.read_text() + self.cert.read_text())
        return path

    @staticmethod
    def tlsa(cert, usage, selector, mtype):
        """The TLSA rdata text ("3 1 1 <hex>") of PEM `cert` (RFC 6698 §2.1):
        selector 0 the whole certificate, 1 its SubjectPublicKeyInfo; matching
        type 0 the DER itself, 1 its SHA-256, 2 its SHA-512."""
        if selector == 0:
            der = ssl.PEM_cert_to_DER_cert(cert.read_text())
        else:
            pem = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-pubkey"],
                                 check=True, capture_output=True, text=True, timeout=60).stdout
            der = base64.b64decode("".join(l for l in pem.splitlines() if "-----" not in l))
        data = {0: der, 1: hashlib.sha256(der).digest(), 2: hashlib.sha512(der).digest()}[mtype]
        return f"{usage} {selector} {mtype} {data.hex()}"

    @staticmethod
    def server_context(cert, key):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        return ctx
