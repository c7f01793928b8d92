"""Helpers for webhook tests."""
import datetime as dt


def run_scheduled_retries() -> int:
    """Run every pending webhook retry schedule now, as the cluster's scheduler does for a ONCE
    schedule when `next_run` comes: parse its args, delete it, queue its task (inline under
    Q_SYNC). Other apps' schedules are left alone (the real scheduler is exercised by the
    end-to-end test). Returns how many ran."""
    import ast

    from django_q.models import Schedule
    from django_q.tasks import async_task

    from registry_policies.webhooks.delivery import DELIVER_TASK

    due = list(Schedule.objects.filter(func=DELIVER_TASK, schedule_type=Schedule.ONCE))
    for schedule in due:
        args = ast.literal_eval(schedule.args or "()")
        schedule.delete()
        async_task(schedule.func, *(args if isinstance(args, tuple) else (args,)))
    return len(due)


def other_ca_pem() -> str:
    """A self-signed CA certificate (PEM) that signed nothing the tests serve."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "other CA")])
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()
