"""confd's function map in Go templates, with confd's semantics (resource/template/template_funcs.go and
memkv): sort orders, Go types (json numbers are float64, split gives []string), defaults and errors."""

from __future__ import annotations

import os

import pytest

from portico.confsync.confd_funcs import Store, confd_funcs, path_match
from portico.confsync.gotemplate import GoError, GoTemplate

STORE = {
    "/app/upstream/b": "10.0.0.1:80", "/app/upstream/a": "10.0.0.2:80", "/app/upstream/long-name": "10.0.0.3:80",
    "/app/name": "shop", "/app/cfg": '{"port": 8080, "id": 1234567, "ratio": 0.25, "tags": ["x", "y"], '
                                     '"on": true, "none": null, "sub": {"k": "v"}}',
    "/app/list": '["b", 2, 3.5, null]', "/app/deep/x/y": "1", "/top": "t",
}


def render(text: str, store: dict[str, str] | None = None) -> str:
    return GoTemplate("t.tmpl", text, confd_funcs(Store(STORE if store is None else store))).execute()


CASES = [
    # memkv: get/gets sorted by key, getvs sorted by value, ls/lsdir sorted names
    ('{{range gets "/app/upstream/*"}}{{.Key}}={{.Value}} {{end}}',
     "/app/upstream/a=10.0.0.2:80 /app/upstream/b=10.0.0.1:80 /app/upstream/long-name=10.0.0.3:80 "),
    ('{{getvs "/app/upstream/*"}}', "[10.0.0.1:80 10.0.0.2:80 10.0.0.3:80]"),
    ('{{gets "/app/*" | len}}', "3"),                               # * does not cross a /
    ('{{range gets "/app/upstream/[ab]"}}{{base .Key}}{{end}}', "ab"),
    ('{{getv "/app/name"}} {{getv "/nope" "fallback"}} {{getv "/app/name" "unused"}}', "shop fallback shop"),
    ('{{get "/app/name"}} {{(get "/app/name").Value}}', "{/app/name shop} shop"),
    ('{{exists "/app/name"}} {{exists "/app"}} {{exists "/nope"}}', "true false false"),
    ('{{ls "/app"}} {{ls "/app/name"}} {{ls "/nope"}}', "[cfg deep list name upstream] [name] []"),
    ('{{lsdir "/app"}} {{lsdir "/app/deep"}}', "[deep upstream] [x]"),
    # memkv's quirk at the root: "/" splits into ["", ""], which only keys directly under / match
    ('{{ls "/"}} {{lsdir "/"}}', "[top] []"),
    # json: map[string]interface{} with float64 numbers
    ('{{$c := json (getv "/app/cfg")}}{{$c.port}} {{$c.id}} {{$c.ratio}} {{$c.tags}} {{$c.on}} {{$c.sub.k}}',
     "8080 1.234567e+06 0.25 [x y] true v"),
    ('{{$c := json (getv "/app/cfg")}}{{$c.none}} {{$c.missing}} {{printf "%T %v" $c.port $c.none}}',
     "<no value> <no value> float64 <nil>"),
    ('{{range $k, $v := json (getv "/app/cfg")}}{{$k}} {{end}}', "id none on port ratio sub tags "),
    ('{{json "null"}} {{jsonArray "null"}}', "map[] []"),
    ('{{jsonArray (getv "/app/list")}} {{range jsonArray (getv "/app/list")}}{{.}},{{end}}',
     "[b 2 3.5 <nil>] b,2,3.5,<no value>,"),
    ('{{$c := json (getv "/app/cfg")}}{{printf "%.0f" $c.id}} {{printf "%d" $c.port}}',
     "1234567 %!d(float64=8080)"),
    # strings and paths
    ('{{split "a,b,,c" ","}} {{len (split "" ",")}} {{join (split "a:b" ":") "-"}}', "[a b  c] 1 a-b"),
    ('{{toUpper "abc"}} {{toLower "ABC"}} {{contains "seafood" "foo"}} {{trimSuffix "a.conf" ".conf"}}',
     "ABC abc true a"),
    ('{{replace "oink oink oink" "k" "ky" 2}} {{replace "oink oink" "oink" "moo" -1}}', "oinky oinky oink moo moo"),
    ('{{base "/a/b/"}} {{base ""}} {{base "/"}} {{dir "/a/b/c"}} {{dir "a"}} {{dir "/a"}}', "b . / /a/b . /"),
    ('{{base64Encode "hello"}} {{base64Decode "aGVsbG8="}}', "aGVsbG8= hello"),
    # numbers: Go ints only, truncating division, sign of the dividend for mod
    ("{{add 1 2}} {{sub 1 2}} {{mul 3 4}} {{div 7 2}} {{div -7 2}} {{mod 7 3}} {{mod -7 3}}", "3 -1 12 3 -3 1 -1"),
    ('{{atoi "42"}} {{atoi "-7"}} {{atoi "+3"}} {{add (atoi "40") 2}}', "42 -7 3 42"),
    ("{{seq 1 3}} {{seq 3 1}} {{range seq 1 3}}{{.}}{{end}}", "[1 2 3] [] 123"),
    ('{{parseBool "true"}} {{parseBool "F"}} {{parseBool "1"}}', "true false true"),
    # collections
    ('{{map "b" 1 "a" "x"}} {{(map "k" 2).k}}', "map[a:x b:1] 2"),
    ('{{reverse (split "a,b,c" ",")}} {{reverse (gets "/app/upstream/*")}}',
     "[c b a] [{/app/upstream/long-name 10.0.0.3:80} {/app/upstream/b 10.0.0.1:80} {/app/upstream/a 10.0.0.2:80}]"),
    ('{{reverse (jsonArray "[1,2]")}}', "[1 2]"),                     # only []string and []KVPair are reversed
    ('{{sortByLength (split "ccc,a,bb,d" ",")}}', "[a d bb ccc]"),
    ('{{range sortKVByLength (gets "/app/upstream/*")}}{{base .Key}} {{end}}', "a b long-name "),
    # environment
    ('{{getenv "PORTICO_TEST_SET"}} {{getenv "PORTICO_TEST_UNSET"}}|{{getenv "PORTICO_TEST_UNSET" "dflt"}}',
     "yes |dflt"),
    ('{{fileExists "/"}} {{fileExists "/surely/not/here"}}', "true false"),
    ('{{lookupIP "localhost" | len | lt 0}} {{lookupIPV4 "localhost"}}', "true [127.0.0.1]"),
    ('{{lookupIP "name.invalid"}}', "[]"),
    ('{{(datetime).Year | lt 2000}} {{printf "%T" datetime}}', "true time.Time"),
]


@pytest.mark.parametrize("text,expected", CASES)
def test_confd_function(text, expected, monkeypatch):
    monkeypatch.setenv("PORTICO_TEST_SET", "yes")
    monkeypatch.delenv("PORTICO_TEST_UNSET", raising=False)
    assert render(text) == expected


ERRORS = [
    ('{{getv "/nope"}}', "error calling getv: key does not exist: /nope"),
    ('{{get "/nope"}}', "error calling get: key does not exist: /nope"),
    ('{{gets "/app/[x"}}', "error calling gets: syntax error in pattern"),
    ('{{json "{bad"}}', "error calling json:"),
    ('{{join (jsonArray "[\\"a\\"]") ","}}', "wrong type for value; expected []string; got []interface {}"),
    ('{{add 1.5 1}}', "expected integer; found 1.5"),
    ('{{parseBool "yes"}}', 'error calling parseBool: strconv.ParseBool: parsing "yes": invalid syntax'),
    ('{{map "a"}}', "error calling map: invalid map call"),
    ('{{map 1 2}}', "error calling map: map keys must be strings"),
    ('{{base64Decode "!!"}}', "error calling base64Decode: illegal base64 data at input byte 0"),
    ('{{mod 1 0}}', "error calling mod: runtime error: integer divide by zero"),
]


@pytest.mark.parametrize("text,fragment", ERRORS)
def test_confd_function_errors(text, fragment):
    with pytest.raises(Exception) as info:
        render(text)
    assert fragment in str(info.value)


def test_datetime_prints_like_go_time_now():
    out = render("{{datetime}}")
    # 2006-01-02 15:04:05.999999999 -0700 MST m=+0.000000001
    import re
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,9})? [+-]\d{4} \S+ m=\+\d+\.\d{9}", out), out
    assert render('{{datetime.Format "2006-01-02"}}') == __import__("datetime").date.today().isoformat()


def test_path_match_is_go_path_match():
    assert path_match("/a/*", "/a/b") and not path_match("/a/*", "/a/b/c") and path_match("/a/?", "/a/x")
    assert path_match("/a/[a-c]x", "/a/bx") and not path_match("/a/[^a-c]x", "/a/bx")
    assert path_match("/a/\\*", "/a/*") and not path_match("/a/\\*", "/a/b")
    with pytest.raises(GoError):
        path_match("/a/[", "/a/b")
    assert os.sep == "/"
