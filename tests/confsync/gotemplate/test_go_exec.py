"""Go text/template semantics, construct by construct. Each expected output is written from Go's documentation
of text/template and fmt (and its exec tests' behaviour), not from running this engine: dot, fields, maps in
sorted order, variables and their scope, pipelines, range/if/with/else, define/template/block, trim markers,
comments, the built-in functions and Go's printing of values."""

from __future__ import annotations

import pytest

from portico.confsync.confd_funcs import KVPair
from portico.confsync.gotemplate import MISSING, GoFunc, GoTemplate
from portico.confsync.gotemplate.values import KVSlice, StrSlice

DATA = {
    "s": "str", "i": 7, "f": 1.5, "t": True, "z": 0, "empty": "", "nil": None,
    "m": {"b": 2, "a": 1, "c": {"d": "deep"}}, "e": {}, "l": [10, 20, 30], "el": [],
    "ss": StrSlice(["x", "y"]), "kv": KVPair("/k", "v"), "kvs": KVSlice([KVPair("/a", "1"), KVPair("/b", "2")]),
    "fn": GoFunc("fn", lambda a, b: f"{a}+{b}", ("string", "string")),
}

CASES = [
    # text and actions
    ("plain text", "plain text"),
    ("{{.s}}", "str"),
    ("{{.i}} {{.f}} {{.t}} {{.z}}", "7 1.5 true 0"),
    ("{{.missing}}", "<no value>"),
    ("{{.missing.deeper}}", "<no value>"),
    ("{{.nil}}", "<no value>"),                       # a nil interface{} result is "no value"
    ("{{print .nil}}", "<nil>"),                      # ...but fmt prints a nil argument as <nil>
    ("{{.m.c.d}}", "deep"),
    ("{{.m}}", "map[a:1 b:2 c:map[d:deep]]"),        # maps print in sorted key order
    ("{{.l}} {{.el}} {{.ss}}", "[10 20 30] [] [x y]"),
    ("{{.kv}} {{.kvs}}", "{/k v} [{/a 1} {/b 2}]"),
    ("{{.kv.Key}}={{.kv.Value}}", "/k=v"),
    ("{{$}}", None),                                  # checked separately (whole map)
    # literals
    ('{{"quoted\\t\\u00e9"}} {{`raw\\n`}}', "quoted\té raw\\n"),
    ("{{1}} {{-2}} {{3.0}} {{1e3}} {{0x1F}} {{0o17}} {{0b101}} {{'a'}} {{1_000}}", "1 -2 3 1000 31 15 5 97 1000"),
    ("{{1e6}} {{1234567.0}} {{0.00001}} {{1e21}} {{100000.0}}", "1e+06 1.234567e+06 1e-05 1e+21 100000"),
    ("{{true}} {{false}}", "true false"),
    # variables
    ("{{$x := 1}}{{$x}}", "1"),
    ("{{$x := 1}}{{$x = 2}}{{$x}}", "2"),
    ("{{$x := 1}}{{if true}}{{$x := 2}}{{$x}}{{end}}{{$x}}", "21"),   # := in a block shadows until {{end}}
    ("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", "2"),           # = assigns the outer one
    ("{{$x := 0}}{{range .l}}{{$x = .}}{{end}}{{$x}}", "30"),
    ("{{with $v := .s}}{{$v}}{{end}}", "str"),
    ("{{range .l}}{{$.s}}{{end}}", "strstrstr"),
    # pipelines: the piped value is the last argument
    ('{{.s | printf "%s-%s" "a"}}', "a-str"),
    ('{{"x" | printf "%s%s" "y" | printf "[%s]"}}', "[yx]"),
    ("{{.l | len}}", "3"),
    ("{{(len .l)}} {{(index .m \"c\").d}}", "3 deep"),
    # if / else if / else
    ("{{if .t}}yes{{end}}", "yes"),
    ("{{if .z}}a{{else}}b{{end}}", "b"),
    ("{{if .empty}}a{{else if .el}}b{{else if .l}}c{{else}}d{{end}}", "c"),
    ("{{if .e}}a{{else}}b{{end}} {{if .missing}}a{{else}}b{{end}} {{if .nil}}a{{else}}b{{end}}", "b b b"),
    ("{{if .kv}}struct is true{{end}}", "struct is true"),
    # with
    ("{{with .m.c}}{{.d}}{{end}}", "deep"),
    ("{{with .missing}}a{{else}}b{{end}}", "b"),
    ("{{with .empty}}a{{else with .s}}{{.}}{{end}}", "str"),
    # range
    ("{{range .l}}{{.}},{{end}}", "10,20,30,"),
    ("{{range $i, $v := .l}}{{$i}}:{{$v}} {{end}}", "0:10 1:20 2:30 "),
    ("{{range $v := .l}}{{$v}}{{end}}", "102030"),
    ("{{range $k, $v := .m}}{{$k}}={{$v}};{{end}}", "a=1;b=2;c=map[d:deep];"),   # sorted keys
    ("{{range .el}}x{{else}}empty{{end}}", "empty"),
    ("{{range .missing}}x{{else}}none{{end}}", "none"),
    ("{{range .e}}x{{else}}empty map{{end}}", "empty map"),
    ("{{range .l}}{{if eq . 20}}{{break}}{{end}}{{.}}{{end}}", "10"),
    ("{{range .l}}{{if eq . 20}}{{continue}}{{end}}{{.}}{{end}}", "1030"),
    ("{{range 3}}{{.}}{{end}}", "012"),
    ("{{range .kvs}}{{.Key}}={{.Value}} {{end}}", "/a=1 /b=2 "),
    # define / template / block
    ('{{define "T"}}<{{.}}>{{end}}{{template "T" .s}}{{template "T" 1}}', "<str><1>"),
    ('{{template "T"}}{{define "T"}}[{{.}}]{{end}}', "[<no value>]"),
    ('{{define "T"}}{{$}}{{end}}{{$x := 5}}{{template "T" .i}}', "7"),
    ('{{block "B" .s}}({{.}}){{end}}', "(str)"),
    # trim markers and comments
    ("a  {{- .s -}}  b", "astrb"),
    ("a\n\t {{- .s}}\n", "astr\n"),
    ("{{.s -}}\n\n  x", "strx"),
    ("{{3 }}-{{- 4}}", "3-4"),                       # `-}}` and `{{-` need the space to be trim markers
    ("a {{/* comment */}} b", "a  b"),
    ("a {{- /* comment */ -}} b", "ab"),
    ("{{/* multi\nline */}}x", "x"),
    # and / or / not
    ("{{and 1 0 2}} {{and 1 2}} {{or 0 \"\" .s}} {{or 0 .empty}} {{not .z}} {{not .s}}", "0 2 str  true false"),
    ("{{and .missing .nosuch.field}}", "<no value>"),   # short-circuit: second never evaluated
    # comparisons
    ("{{eq 1 1}} {{eq 1 2}} {{eq .s \"str\"}} {{eq 1 2 3 1}} {{ne 1 2}}", "true false true true true"),
    ("{{lt 1 2}} {{le 2 2}} {{gt \"b\" \"a\"}} {{ge 1.5 2.5}}", "true true true false"),
    ("{{eq .missing \"x\"}} {{eq .kv .kv}}", "false true"),
    # len / index / slice
    ("{{len .s}} {{len \"héllo\"}} {{len .m}} {{len .el}}", "3 6 3 0"),     # len counts bytes
    ("{{index .l 1}} {{index .m \"b\"}} {{index .s 0}} {{index .m \"c\" \"d\"}}", "20 2 115 deep"),
    ("{{index .m \"zz\"}}", "<no value>"),           # missing map key: zero value, a nil interface
    ("{{slice .l 1}} {{slice .l 1 2}} {{slice .s 1 2}} {{slice .s}}", "[20 30] [20] t str"),
    # print family
    ('{{print "a" "b"}} {{print 1 2}} {{print "a" 1 2 "b"}}', "ab 1 2 a1 2b"),
    ('{{println "a" 1}}', "a 1\n"),
    ('{{printf "%d|%5d|%-5d|%05d|%x|%X|%o|%b|%c|%q|%U" 42 42 42 42 255 255 8 5 65 66 67}}',
     "42|   42|42   |00042|ff|FF|10|101|A|'B'|U+0043"),
    ('{{printf "%s|%10s|%-10s|%.2s|%q|%x" "go" "go" "go" "gopher" "a\\"b" "hi"}}',
     'go|        go|go        |go|"a\\"b"|6869'),
    ('{{printf "%f|%.2f|%5.2f|%e|%g|%.3g|%v" 3.14159 3.14159 3.14159 1234.5678 0.000012345 3.14159 2.5}}',
     "3.141590|3.14| 3.14|1.234568e+03|1.2345e-05|3.14|2.5"),
    ('{{printf "%t|%v|%+v|%T|%T|%T" true .kv .kv .l .ss .f}}',
     "true|{/k v}|{Key:/k Value:v}|[]interface {}|[]string|float64"),
    ('{{printf "%v|%d" .m .l}}', "map[a:1 b:2 c:map[d:deep]]|[10 20 30]"),
    ('{{printf "%d%%"  50}}', "50%"),
    ('{{printf "%s|%d" 5 "x"}}', "%!s(int=5)|%!d(string=x)"),
    ('{{printf "%d %d" 1}}', "1 %!d(MISSING)"),
    ('{{printf "%d" 1 2}}', "1%!(EXTRA int=2)"),
    ('{{printf "%s" .nil}} {{printf "%v" .nil}}', "%!s(<nil>) <nil>"),
    ('{{printf "%*d|%-*d|" 4 1 3 2}}', "   1|2  |"),
    ('{{printf "%+d|% d|%+.1f" 5 5 2.25}}', "+5| 5|+2.2"),
    # escapers
    ('{{html "<a href=\\"x\\">&\'"}}', "&lt;a href=&#34;x&#34;&gt;&amp;&#39;"),
    ("{{js \"it's <b> \\\"q\\\" \\\\ =\"}}", "it\\'s \\u003Cb\\u003E \\\"q\\\" \\\\ \\u003D"),
    ('{{urlquery "a b&c=d/é"}}', "a+b%26c%3Dd%2F%C3%A9"),
    ('{{"<x>" | html}}', "&lt;x&gt;"),
    # call
    ('{{call .fn "a" "b"}}', "a+b"),
    # methods on struct values and chains
    ("{{.kvs | len}} {{(index .kvs 1).Value}}", "2 2"),
]


@pytest.mark.parametrize("template,expected", [c for c in CASES if c[1] is not None])
def test_construct(template, expected):
    assert GoTemplate("t.tmpl", template).execute(DATA) == expected


def test_dollar_is_the_data_and_nil_data_prints_no_value():
    assert GoTemplate("t", "{{$}}").execute({"b": [1, "x"], "a": None}) == "map[a:<nil> b:[1 x]]"
    assert GoTemplate("t", "{{.}}|{{.x}}|{{$}}").execute(MISSING) == "<no value>|<no value>|<no value>"


def test_bytes_come_through_exactly():
    text = "line\r\nno newline at end {{.s}}\t\x00é"
    assert GoTemplate("t", text).execute(DATA) == "line\r\nno newline at end str\t\x00é"
    assert GoTemplate("t", "a\n\n").execute(DATA) == "a\n\n"


def test_deep_template_recursion_is_an_error_not_a_crash():
    tmpl = GoTemplate("t", '{{define "r"}}{{template "r" .}}{{end}}{{template "r" 1}}')
    with pytest.raises(Exception) as info:
        tmpl.execute(DATA)
    assert "exceeded maximum template depth" in str(info.value)
