"""gorouter keys read for drop-in behaviour (issue 11): spellings, aliases, lists, bad values."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from portico.config.loader import ConfigError, load_config

PEM_A = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"


def load(tmp_path, text: str):
    path = tmp_path / "gorouter.yml"
    path.write_text(textwrap.dedent(text))
    return load_config(path)


def error(tmp_path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return info.value


def test_read_header_timeout_is_gorouters_name_for_request_header_timeout(tmp_path):
    assert load(tmp_path, "read_header_timeout: 3s\n").request_header_timeout == 3.0
    assert load(tmp_path, "request_header_timeout: 4s\n").request_header_timeout == 4.0
    assert load(tmp_path, "read_header_timeout: 0\n").request_header_timeout == 0.0  # no limit, as gorouter
    err = error(tmp_path, "read_header_timeout: 3s\nrequest_header_timeout: 4s\n")
    assert "keep only one" in str(err)


def test_top_level_ca_certs_list_and_skip_ssl_validation(tmp_path):
    cfg = load(tmp_path, yaml.safe_dump({"ca_certs": [PEM_A, PEM_A], "skip_ssl_validation": True}))
    assert len(cfg.ca_certs) == 2 and cfg.ca_certs[0].startswith("-----BEGIN CERTIFICATE-----")
    assert cfg.skip_ssl_validation is True
    single = load(tmp_path, 'ca_certs: "-----BEGIN CERTIFICATE-----\\nA\\n-----END CERTIFICATE-----"\n')
    assert len(single.ca_certs) == 1
    assert load(tmp_path, "port: 1\n").ca_certs == ()
    err = error(tmp_path, "ca_certs:\n- /etc/ssl/ca.pem\n")
    assert err.key == "ca_certs[0]" and err.line == 2 and "PEM" in err.reason
