"""A new nginx file is checked as a candidate, in the configuration nginx would load with it."""

from ansible_collections.mtls.fleet.plugins.module_utils.nginx_candidate import conf_path, main_with_candidate

MAIN = """user www-data;
include /etc/nginx/modules-enabled/*.conf;
http {
\tinclude mime.types;
\tinclude CONF_D/*.conf;
\tinclude /etc/nginx/sites-enabled/*;
}
"""


def test_the_include_that_loads_the_file_loads_the_candidate_instead(tmp_path):
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    for name in ("a.conf", "mtls-fleet.conf", "z.conf", ".hidden.conf"):
        (conf_d / name).write_text("")
    main = MAIN.replace("CONF_D", str(conf_d))
    candidate = str(conf_d / ".mtls-fleet.conf.0123456789ab.candidate")
    text = main_with_candidate(main, str(tmp_path), str(conf_d / "mtls-fleet.conf"), candidate)
    assert text == main.replace(f"\tinclude {conf_d}/*.conf;", f"\tinclude {conf_d}/a.conf;\n\tinclude {candidate};\n\tinclude {conf_d}/z.conf;")


def test_a_first_version_is_checked_too_and_relative_includes_resolve_from_the_main_files_directory(tmp_path):
    (tmp_path / "conf.d").mkdir()
    main = "http {\n    include conf.d/*.conf;\n}\n"
    text = main_with_candidate(main, str(tmp_path), str(tmp_path / "conf.d" / "mtls-fleet.conf"), "/c")
    assert text == "http {\n    include /c;\n}\n"


def test_a_file_no_include_of_the_main_configuration_loads_cannot_be_checked_beside_it(tmp_path):
    assert main_with_candidate(MAIN.replace("CONF_D", str(tmp_path)), str(tmp_path), "/etc/nginx/elsewhere/x.conf", "/c") is None


def test_the_main_configuration_is_the_one_nginx_was_built_with():
    assert conf_path("nginx version: nginx/1.22.1\nconfigure arguments: --prefix=/usr/share/nginx --conf-path=/etc/nginx/nginx.conf ...") \
        == "/etc/nginx/nginx.conf"
    assert conf_path("") == "/etc/nginx/nginx.conf"
