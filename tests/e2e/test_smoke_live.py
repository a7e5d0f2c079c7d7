from pathlib import Path

from cryptography import x509

from tests.conftest import LiveServer
from tests.helpers import csr_pem, key_pem, p256


def test_enroll_then_whoami_over_real_tls(live_server: LiveServer, tmp_path: Path) -> None:
    key = p256()
    with live_server.client(headers={"Authorization": f"Bearer {live_server.admin_token}"}) as http:
        issued = http.post("/csr", json={"csr": csr_pem(key, "svc-a").decode()})
    assert issued.status_code == 201, issued.text
    cert_path, key_path = tmp_path / "c.pem", tmp_path / "c.key"
    cert_path.write_text(issued.json()["certificate"])
    key_path.write_bytes(key_pem(key))
    with live_server.client(cert_path, key_path) as http:
        me = http.get("/whoami")
    assert me.status_code == 200
    assert me.json()["cn"] == "svc-a"
    assert me.json()["serial"] == format(x509.load_pem_x509_certificate(cert_path.read_bytes()).serial_number, "x")
    with live_server.client() as http:
        assert http.get("/whoami").status_code == 401
