"""Redactor: whole secrets, elided fragments, logger adapter and filter."""

import logging

from tterm.core.redact import MASK, RedactingFilter, RedactingLogger, Redactor

TOKEN = "eyJhbGciOiJIUzI1NiJ9.payload-abcdefghijklmnopqrstuvwxyz0123456789.signatureXYZ"


def test_whole_secrets_are_masked():
    r = Redactor()
    r.add("hunter2pass")
    assert r.scrub("password=hunter2pass;") == f"password={MASK};"
    assert "hunter2pass" in r


def test_fragments_of_long_secrets_are_masked():
    r = Redactor()
    r.add(TOKEN, rotating=True)
    # What websockets logs for a long frame: the head and the tail with an ellipsis between.
    elided = "> TEXT 'authorize\\n0\\n\\n" + TOKEN[:40] + "…" + TOKEN[-20:] + "' [300 bytes]"
    out = r.scrub(elided)
    assert TOKEN[:12] not in out and TOKEN[-12:] not in out
    assert out.startswith("> TEXT 'authorize")


def test_human_passwords_are_masked_whole_only():
    r = Redactor()
    r.add("wrong-password-123")
    assert r.scrub("Incorrect username or password") == "Incorrect username or password"
    assert r.scrub("pw=wrong-password-123") == f"pw={MASK}"


def test_short_common_text_is_left_alone():
    r = Redactor()
    r.add(TOKEN)
    assert r.scrub("GET /v1/order/list -> 200") == "GET /v1/order/list -> 200"
    assert r.scrub("") == ""


def test_rotating_secrets_keep_only_the_newest():
    r = Redactor(keep_rotating=2)
    for i in range(3):
        r.add(f"rotating-token-number-{i}-xxxxxxxx", rotating=True)
    assert "rotating-token-number-0-xxxxxxxx" not in r.secrets()
    assert len(r.secrets()) == 2


def test_redacting_logger_scrubs_formatted_records(caplog):
    r = Redactor()
    r.add("topsecretvalue")
    logger = RedactingLogger(logging.getLogger("test.redact"), r)
    with caplog.at_level(logging.DEBUG, logger="test.redact"):
        logger.debug("> %s", "frame with topsecretvalue inside")
        logger.info("no args topsecretvalue")
        try:
            raise ValueError("failed with topsecretvalue")
        except ValueError as exc:
            logger.error("oops", exc_info=exc)
    text = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "topsecretvalue" not in text
    assert text.count(MASK) == 3


def test_filter_scrubs_records_in_place():
    r = Redactor()
    r.add("topsecretvalue")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token %s", ("topsecretvalue",), None)
    assert RedactingFilter(r).filter(record)
    assert record.getMessage() == f"token {MASK}"


def test_journal_and_log_file_mask_a_registered_secret_anywhere(tmp_path):
    """A token a broker registered is masked in journal free text and in the log file, even
    where no key name or pattern would give it away."""
    import logging

    from tterm.core.journal import Journal
    from tterm.core.models import Notice
    from tterm.core.redact import REDACTOR
    from tterm.logs import setup_logging

    token = "eyJhbGciOiJIUzI1NiJ9.secret-session-token-0123456789abcdef"
    REDACTOR.add(token, rotating=True)
    journal = Journal(tmp_path / "j.sqlite3")
    journal.record_event(Notice(level="error", text=f"vendor said: session {token} rejected"))
    journal.record("error", {"detail": f"got {token}"})
    rows = [e.data for e in journal.entries()]
    assert rows and all(token not in str(r) for r in rows)
    path = setup_logging(tmp_path)
    logging.getLogger("tterm.test").warning("reconnecting with %s", token)
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = path.read_text()
    assert "reconnecting with" in text and token not in text
    setup_logging(tmp_path)  # re-entry replaces our handlers, never stacks them
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_tterm_handler", False)]
    assert len(ours) == 1
    for h in ours:  # leave the root logger as we found it
        logging.getLogger().removeHandler(h)
        h.close()
    journal.close()


def test_a_secret_is_masked_in_any_letter_case():
    """An alert's ticker is upper-cased before the error that refuses it quotes it back."""
    r = Redactor()
    r.add("hook-Secret-1234567890")
    assert r.scrub("unknown symbol 'HOOK-SECRET-1234567890'") == f"unknown symbol '{MASK}'"
    assert r.scrub("got hook-secret-1234567890!") == f"got {MASK}!"
    r.add(TOKEN, rotating=True)
    assert TOKEN.upper()[:30] not in r.scrub("head " + TOKEN.upper()[:30] + "...")  # fragments too


def test_a_string_journaled_before_its_secret_was_registered_is_masked_after(tmp_path):
    """The journal caches scrubbed strings; a secret registered later (the hub's, a new token)
    must not stay visible in a string cached as harmless."""
    from tterm.core.journal import Journal
    from tterm.core.redact import REDACTOR

    secret = "Zq7Lw0pX9late2reg"  # under 24 characters: masked whole only, so no other test is touched
    text = f"quantity must be a number, got '{secret}'"
    with Journal(tmp_path / "j.sqlite3") as journal:
        journal.record("webhook", {"message": text})
        REDACTOR.add(secret)
        journal.record("webhook", {"message": text})
        rows = [e.data["message"] for e in journal.entries()]
    assert rows[0] == text  # recorded before anyone said it was a secret
    assert secret not in rows[1] and MASK in rows[1]
