"""Go's error messages: parse errors as `template: NAME:LINE: msg`, execution errors as
`template: NAME:LINE:COL: executing "NAME" at <NODE>: msg` with COL the node's byte offset in its line and
NODE Go's text of the node (cut at 20 bytes)."""

from __future__ import annotations

import pytest

from portico.confsync.confd_funcs import Store, confd_funcs
from portico.confsync.gotemplate import GoTemplate, TemplateExecError, TemplateSyntaxError

FUNCS = confd_funcs(Store({"/app/port": "8080", "/app/cfg": '{"port": 8080, "n": null}'}))

PARSE_ERRORS = [
    ("{{nope}}", 'template: t.tmpl:1: function "nope" not defined'),
    ("a\nb\n{{$x}}", 'template: t.tmpl:3: undefined variable "$x"'),
    ("{{if .a}}x", "template: t.tmpl:1: unexpected EOF"),
    ("{{end}}", "template: t.tmpl:1: unexpected {{end}}"),
    ("{{else}}", "template: t.tmpl:1: unexpected {{else}}"),
    ("{{if}}{{end}}", "template: t.tmpl:1: missing value for if"),
    ("{{.a | 3}}", "template: t.tmpl:1: non executable command in pipeline stage 2"),
    ("{{.a", "template: t.tmpl:1: unclosed action"),
    ("{{break}}", "template: t.tmpl:1: {{break}} outside {{range}}"),
    ('{{"\\q"}}', "template: t.tmpl:1: invalid syntax"),
    ("{{/* x */ .a}}", "template: t.tmpl:1: comment ends before closing delimiter"),
    ("{{range $i, $v, $w := .}}{{end}}", "template: t.tmpl:1: too many declarations in range"),
]


@pytest.mark.parametrize("text,message", PARSE_ERRORS)
def test_parse_errors(text, message):
    with pytest.raises(TemplateSyntaxError) as info:
        GoTemplate("t.tmpl", text, FUNCS)
    assert str(info.value) == message


EXEC_ERRORS = [
    ('x\n  {{getv "/nope"}}', 'template: t.tmpl:2:4: executing "t.tmpl" at <getv "/nope">: '
                              "error calling getv: key does not exist: /nope"),
    ('{{$c := json (getv "/app/cfg")}}{{add $c.port 1}}',
     'template: t.tmpl:1:40: executing "t.tmpl" at <$c.port>: wrong type for value; expected int; got float64'),
    ('{{add "1" 2}}', 'template: t.tmpl:1:6: executing "t.tmpl" at <"1">: expected integer; found "1"'),
    ("{{getv}}", 'template: t.tmpl:1:2: executing "t.tmpl" at <getv>: wrong number of args for getv: '
                 "want at least 1 got 0"),
    ('{{base "a" "b"}}', 'template: t.tmpl:1:2: executing "t.tmpl" at <base>: wrong number of args for base: '
                         "want 1 got 2"),
    ('{{$c := json (getv "/app/cfg")}}{{$c.n.x}}',
     'template: t.tmpl:1:36: executing "t.tmpl" at <$c.n.x>: nil pointer evaluating interface {}.x'),
    ('{{json "[1]"}}', 'template: t.tmpl:1:2: executing "t.tmpl" at <json "[1]">: error calling json: '
                       "json: cannot unmarshal array into Go value of type map[string]interface {}"),
    ('{{atoi "8080x"}}', 'template: t.tmpl:1:2: executing "t.tmpl" at <atoi "8080x">: error calling atoi: '
                         'strconv.Atoi: parsing "8080x": invalid syntax'),
    ("{{div 1 0}}", 'template: t.tmpl:1:2: executing "t.tmpl" at <div 1 0>: error calling div: '
                    "runtime error: integer divide by zero"),
    ('{{eq 1 "a"}}', 'template: t.tmpl:1:2: executing "t.tmpl" at <eq 1 "a">: error calling eq: '
                     "incompatible types for comparison"),
    ('{{index "ab" 5}}', 'template: t.tmpl:1:2: executing "t.tmpl" at <index "ab" 5>: error calling index: '
                         "index out of range: 5"),
    ('{{getv "/a/very/long/key/name/here"}}',
     'template: t.tmpl:1:2: executing "t.tmpl" at <getv "/a/very/long/k...>: '
     "error calling getv: key does not exist: /a/very/long/key/name/here"),
    # the node named is the last one evaluated (exec.go's s.at), here the range's operand
    ('{{range "abc"}}{{end}}', 'template: t.tmpl:1:8: executing "t.tmpl" at <"abc">: '
                               "range can't iterate over abc"),
    ('{{template "nope"}}', 'template: t.tmpl:1:11: executing "t.tmpl" at <{{template "nope"}}>: '
                            'template "nope" not defined'),
    ('{{define "inner"}}\n {{getv "/x"}}{{end}}{{template "inner"}}',
     'template: t.tmpl:2:3: executing "inner" at <getv "/x">: error calling getv: key does not exist: /x'),
    ("{{nil}}", 'template: t.tmpl:1:2: executing "t.tmpl" at <nil>: nil is not a command'),
    ('{{"a" 1}}', 'template: t.tmpl:1:2: executing "t.tmpl" at <"a">: can\'t give argument to non-function "a"'),
    ('{{(getv "/app/port").x}}', 'template: t.tmpl:1:8: executing "t.tmpl" at <"/app/port">: '
                                 "can't evaluate field x in type string"),
]


@pytest.mark.parametrize("text,message", EXEC_ERRORS)
def test_exec_errors(text, message):
    with pytest.raises(TemplateExecError) as info:
        GoTemplate("t.tmpl", text, FUNCS).execute()
    assert str(info.value) == message


def test_exec_error_carries_line_column_and_cause():
    with pytest.raises(TemplateExecError) as info:
        GoTemplate("t.tmpl", 'a\nb {{getv "/k"}}', FUNCS).execute()
    assert (info.value.line, info.value.column) == (2, 4)
    assert getattr(info.value.cause, "key", None) == "/k"
