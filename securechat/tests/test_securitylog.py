from securechat.securitylog import format_event


def test_a_value_cannot_start_a_second_line_or_a_forged_field():
    line = format_event(
        "certificate.revoked", {"subject": "alice", "detail": 'x"\nuser.deleted a=b'}
    )
    assert "\n" not in line
    assert line == 'certificate.revoked subject=alice detail="x\\" user.deleted a=b"'


def test_plain_values_stay_bare_and_missing_ones_are_a_dash():
    line = format_event("user.deleted", {"actor": None, "subject": "dave", "serial": ""})
    assert line == "user.deleted actor=- subject=dave serial=-"


def test_long_values_are_cut():
    assert len(format_event("e", {"detail": "y" * 5000})) < 220
