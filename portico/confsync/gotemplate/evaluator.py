"""Execute a parsed Go template: dot, variables, pipelines, calls with Go's argument rules, range/if/with.

Mirrors text/template's exec.go: a piped value becomes the last argument; a pipeline's nil interface result
becomes "no value" (printed `<no value>`); function arguments are checked against the function's Go parameter
types (`wrong type for value; expected int; got float64`), number literals become int or float64 as Go's
ideal constants do; errors carry the template, line and byte column of the failing node.
"""

from __future__ import annotations

from typing import Any

from portico.confsync.gotemplate import nodes as n
from portico.confsync.gotemplate.errors import TemplateExecError
from portico.confsync.gotemplate.gofmt import format_value
from portico.confsync.gotemplate.values import (
    MISSING,
    GoError,
    GoFunc,
    GoStruct,
    KVSlice,
    StrSlice,
    truth,
    type_name,
)

MAX_DEPTH = 10000


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_NO_FINAL: Any = object()     # Go's missingVal: nothing is piped in


def _accepts(param: str, value: Any) -> bool:
    """Is an already-evaluated value assignable to a Go parameter type?"""
    if param in ("any", "value"):
        return True
    if param == "string":
        return isinstance(value, str)
    if param == "int":
        return isinstance(value, int) and not isinstance(value, bool) and type_name(value) == "int"
    if param == "bool":
        return isinstance(value, bool)
    if param == "float64":
        return isinstance(value, float)
    if param == "[]string":
        return isinstance(value, StrSlice)
    if param == "[]memkv.KVPair":
        return isinstance(value, KVSlice)
    return type_name(value) == param


class State:
    """One execution: the output, the variable stack, and the node being evaluated (for error locations)."""

    def __init__(self, trees: dict[str, n.Tree], funcs: dict[str, GoFunc], tree: n.Tree):
        self.trees, self.funcs, self.tree = trees, funcs, tree
        self.out: list[str] = []
        self.vars: list[list[Any]] = []
        self.node: n.Node | None = None
        self.depth = 0

    # errors -------------------------------------------------------------------------------------------
    def errorf(self, message: str, cause: BaseException | None = None) -> TemplateExecError:
        name = self.tree.name
        if self.node is None:
            return TemplateExecError(f"template: {name}: {message}", cause=cause)
        line, col = self.tree.location(self.node.pos)
        context = self.node.go_string()
        if len(context.encode()) > 20:
            context = context[:20] + "..."
        return TemplateExecError(f'template: {self.tree.parse_name}:{line}:{col}: executing "{name}" at '
                                 f"<{context}>: {message}", line, col, cause)

    def at(self, node: n.Node) -> None:
        self.node = node

    # variables ----------------------------------------------------------------------------------------
    def push(self, name: str, value: Any) -> None:
        self.vars.append([name, value])

    def mark(self) -> int:
        return len(self.vars)

    def pop(self, mark: int) -> None:
        del self.vars[mark:]

    def set_top(self, n_from_top: int, value: Any) -> None:
        self.vars[len(self.vars) - n_from_top][1] = value

    def set_var(self, name: str, value: Any) -> None:
        for entry in reversed(self.vars):
            if entry[0] == name:
                entry[1] = value
                return
        raise self.errorf(f"undefined variable: {name}")

    def var_value(self, name: str) -> Any:
        for entry in reversed(self.vars):
            if entry[0] == name:
                return entry[1]
        raise self.errorf(f"undefined variable: {name}")

    # walking ------------------------------------------------------------------------------------------
    def walk(self, dot: Any, node: n.Node) -> None:
        self.at(node)
        if isinstance(node, n.ListNode):
            for child in node.nodes:
                self.walk(dot, child)
        elif isinstance(node, n.TextNode):
            self.out.append(node.text)
        elif isinstance(node, n.ActionNode):
            value = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.print_value(node, value)
        elif isinstance(node, n.BranchNode):
            if node.keyword == "range":
                self.walk_range(dot, node)
            else:
                self.walk_if_or_with(dot, node)
        elif isinstance(node, n.TemplateNode):
            self.walk_template(dot, node)
        elif isinstance(node, n.BreakNode):
            raise _Break()
        elif isinstance(node, n.ContinueNode):
            raise _Continue()
        elif isinstance(node, n.CommentNode):
            pass
        else:
            raise self.errorf(f"unknown node: {node.go_string()}")

    def print_value(self, node: n.Node, value: Any) -> None:
        self.at(node)
        kind_of = type(value)
        if kind_of is str:
            self.out.append(value)
        elif kind_of is int:
            self.out.append(str(value))
        elif value is MISSING:
            self.out.append("<no value>")
        elif isinstance(value, GoFunc):
            raise self.errorf(f"can't print {node.go_string()} of type {type_name(value)}")
        else:
            self.out.append(format_value(value))

    def walk_if_or_with(self, dot: Any, node: n.BranchNode) -> None:
        mark = self.mark()
        try:
            value = self.eval_pipeline(dot, node.pipe)
            if truth(value):
                self.walk(value if node.keyword == "with" else dot, node.body)
            elif node.else_body is not None:
                self.walk(dot, node.else_body)
        finally:
            self.pop(mark)

    def walk_range(self, dot: Any, node: n.BranchNode) -> None:
        self.at(node)
        outer = self.mark()
        try:
            value = self.eval_pipeline(dot, node.pipe)
            mark = self.mark()
            items: list[tuple[Any, Any]]
            if isinstance(value, (list, tuple)):
                items = list(enumerate(value))
            elif isinstance(value, dict):
                items = [(k, value[k]) for k in sorted(value)]
            elif isinstance(value, int) and not isinstance(value, bool):
                items = [(i, i) for i in range(value)]
            elif value is MISSING or value is None:
                items = []
            else:
                raise self.errorf(f"range can't iterate over {format_value(value)}")
            for index, elem in items:
                decl = node.pipe.decl
                if decl:
                    if node.pipe.is_assign:
                        self.set_var(decl[0].idents[0], index if len(decl) > 1 else elem)
                        if len(decl) > 1:
                            self.set_var(decl[1].idents[0], elem)
                    else:
                        self.set_top(1, elem)
                        if len(decl) > 1:
                            self.set_top(2, index)
                try:
                    self.walk(elem, node.body)
                except _Continue:
                    pass
                except _Break:
                    break
                finally:
                    self.pop(mark)
            if not items and node.else_body is not None:
                self.walk(dot, node.else_body)
        finally:
            self.pop(outer)

    def walk_template(self, dot: Any, node: n.TemplateNode) -> None:
        self.at(node)
        tree = self.trees.get(node.name)
        if tree is None:
            raise self.errorf(f'template "{node.name}" not defined'.replace('"', '"'))
        value = self.eval_pipeline(dot, node.pipe) if node.pipe is not None else MISSING
        if self.depth >= MAX_DEPTH:
            raise self.errorf(f"exceeded maximum template depth ({MAX_DEPTH})")
        inner = State(self.trees, self.funcs, tree)
        inner.out, inner.depth = self.out, self.depth + 1
        inner.push("$", value)
        inner.walk(value, tree.root)

    # evaluation ---------------------------------------------------------------------------------------
    def eval_pipeline(self, dot: Any, pipe: n.PipeNode | None) -> Any:
        if pipe is None:
            return MISSING
        self.at(pipe)
        value: Any = _NO_FINAL
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
            if value is None:           # a nil interface{} result is "no value" (exec.go digs one level)
                value = MISSING
        for var in pipe.decl:
            if pipe.is_assign:
                self.set_var(var.idents[0], value)
            else:
                self.push(var.idents[0], value)
        return value

    def eval_command(self, dot: Any, cmd: n.CommandNode, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, n.FieldNode):
            return self.eval_field_node(dot, first, cmd.args, final)
        if isinstance(first, n.ChainNode):
            return self.eval_chain_node(dot, first, cmd.args, final)
        if isinstance(first, n.IdentifierNode):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, n.PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, n.VariableNode):
            return self.eval_variable_node(dot, first, cmd.args, final)
        self.at(first)
        self.not_a_function(cmd.args, final)
        if isinstance(first, n.BoolNode):
            return first.value
        if isinstance(first, n.DotNode):
            return dot
        if isinstance(first, n.NilNode):
            raise self.errorf("nil is not a command")
        if isinstance(first, n.NumberNode):
            return self.ideal_constant(first)
        if isinstance(first, n.StringNode):
            return first.value
        raise self.errorf(f"can't evaluate command {first.go_string()!r}")

    def not_a_function(self, args: list[n.Node], final: Any) -> None:
        if len(args) > 1 or final is not _NO_FINAL:
            raise self.errorf(f"can't give argument to non-function {args[0].go_string()}")

    def ideal_constant(self, node: n.NumberNode) -> Any:
        self.at(node)
        text = node.text
        is_hex = text.lstrip("+-")[:2].lower() == "0x"
        if node.is_float and not is_hex and not node.is_char and any(c in text for c in ".eEpP"):
            return node.float_value
        if node.is_int:
            return node.int_value
        return node.float_value

    def eval_field_node(self, dot: Any, field: n.FieldNode, args: list[n.Node], final: Any) -> Any:
        self.at(field)
        return self.eval_field_chain(dot, dot, field, field.idents, args, final)

    def eval_chain_node(self, dot: Any, chain: n.ChainNode, args: list[n.Node], final: Any) -> Any:
        self.at(chain)
        if isinstance(chain.node, n.NilNode):
            raise self.errorf("indirection through explicit nil in " + chain.go_string())
        pipe = self.eval_arg(dot, "any", chain.node)
        return self.eval_field_chain(dot, pipe, chain, chain.fields, args, final)

    def eval_variable_node(self, dot: Any, var: n.VariableNode, args: list[n.Node], final: Any) -> Any:
        self.at(var)
        value = self.var_value(var.idents[0])
        if len(var.idents) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, var, var.idents[1:], args, final)

    def eval_field_chain(self, dot: Any, receiver: Any, node: n.Node, idents: list[str], args: list[n.Node],
                         final: Any) -> Any:
        for name in idents[:-1]:
            receiver = self.eval_field(dot, name, node, [], _NO_FINAL, receiver)
        return self.eval_field(dot, idents[-1], node, args, final, receiver)

    def eval_field(self, dot: Any, name: str, node: n.Node, args: list[n.Node], final: Any,
                   receiver: Any) -> Any:
        if receiver is MISSING:
            return MISSING
        if receiver is None:
            raise self.errorf(f"nil pointer evaluating interface {{}}.{name}")
        if isinstance(receiver, GoStruct):
            method = receiver.go_method(name)
            if method is not None:
                return self.eval_call(dot, method, node, name, args, final)
        has_args = len(args) > 1 or final is not _NO_FINAL
        if isinstance(receiver, GoStruct) and name in receiver.go_fields:
            if has_args:
                raise self.errorf(f"{name} has arguments but cannot be invoked as function")
            return receiver.go_field(name)
        if isinstance(receiver, dict):
            if has_args:
                raise self.errorf(f"{name} is not a method but has arguments")
            return receiver.get(name, MISSING)
        raise self.errorf(f"can't evaluate field {name} in type {type_name(receiver)}")

    def eval_function(self, dot: Any, ident: n.IdentifierNode, cmd: n.Node, args: list[n.Node],
                      final: Any) -> Any:
        self.at(ident)
        fn = self.funcs.get(ident.name)
        if fn is None:
            raise self.errorf(f'"{ident.name}" is not a defined function')
        return self.eval_call(dot, fn, cmd, ident.name, args, final)

    def eval_call(self, dot: Any, fn: GoFunc, node: n.Node, name: str, args: list[n.Node], final: Any) -> Any:
        args = args[1:]
        num_in = len(args) + (0 if final is _NO_FINAL else 1)
        n_params = len(fn.params) + (1 if fn.variadic else 0)
        if fn.variadic:
            if num_in < len(fn.params):
                raise self.errorf(f"wrong number of args for {name}: want at least {len(fn.params)} "
                                  f"got {len(args)}")
        elif num_in != n_params:
            raise self.errorf(f"wrong number of args for {name}: want {n_params} got {num_in}")
        if fn.lazy:                                 # and / or: short-circuit, return an operand
            value: Any = MISSING
            for arg in args:
                value = self.eval_arg(dot, "value", arg)
                if truth(value) == (name == "or"):
                    return value
            if final is not _NO_FINAL:
                value = final
            return value
        argv: list[Any] = []
        for i, arg in enumerate(args):
            param = fn.params[i] if i < len(fn.params) else fn.variadic
            argv.append(self.eval_arg(dot, param or "any", arg))
        if final is not _NO_FINAL:
            i = len(args)
            param = fn.params[i] if i < len(fn.params) else fn.variadic
            argv.append(self.validate_type(final, param or "any"))
        try:
            result = fn.fn(*argv)
        except (GoError, ValueError, TypeError, ZeroDivisionError, OverflowError, LookupError) as exc:
            self.at(node)
            message = str(exc) if isinstance(exc, GoError) else _python_error(exc)
            raise self.errorf(f"error calling {name}: {message}", exc) from None
        return result

    def validate_type(self, value: Any, param: str) -> Any:
        if value is MISSING or (value is None and param not in ("any", "value")):
            if param in ("any", "value"):
                return None if param == "any" else MISSING
            if param.startswith(("[]", "map[")):
                return StrSlice() if param == "[]string" else KVSlice() if param.startswith("[]memkv") else []
            raise self.errorf(f"invalid value; expected {GoFunc.go_param(param)}")
        if not _accepts(param, value):
            raise self.errorf(f"wrong type for value; expected {GoFunc.go_param(param)}; got {type_name(value)}")
        return value

    def eval_arg(self, dot: Any, param: str, node: n.Node) -> Any:
        self.at(node)
        if isinstance(node, n.DotNode):
            return self.validate_type(dot, param)
        if isinstance(node, n.NilNode):
            if param in ("any", "value") or param.startswith(("[]", "map[")):
                return None
            raise self.errorf(f"cannot assign nil to {GoFunc.go_param(param)}")
        if isinstance(node, n.FieldNode):
            return self.validate_type(self.eval_field_node(dot, node, [node], _NO_FINAL), param)
        if isinstance(node, n.VariableNode):
            return self.validate_type(self.eval_variable_node(dot, node, [], _NO_FINAL), param)
        if isinstance(node, n.PipeNode):
            return self.validate_type(self.eval_pipeline(dot, node), param)
        if isinstance(node, n.IdentifierNode):
            return self.validate_type(self.eval_function(dot, node, node, [node], _NO_FINAL), param)
        if isinstance(node, n.ChainNode):
            return self.validate_type(self.eval_chain_node(dot, node, [], _NO_FINAL), param)
        if param == "bool":
            if isinstance(node, n.BoolNode):
                return node.value
            raise self.errorf(f"expected bool; found {node.go_string()}")
        if param == "string":
            if isinstance(node, n.StringNode):
                return node.value
            raise self.errorf(f"expected string; found {node.go_string()}")
        if param == "int":
            if isinstance(node, n.NumberNode) and node.is_int:
                return node.int_value
            raise self.errorf(f"expected integer; found {node.go_string()}")
        if param == "float64":
            if isinstance(node, n.NumberNode) and node.is_float:
                return node.float_value
            raise self.errorf(f"expected float; found {node.go_string()}")
        if param in ("any", "value"):
            if isinstance(node, n.BoolNode):
                return node.value
            if isinstance(node, n.NumberNode):
                return self.ideal_constant(node)
            if isinstance(node, n.StringNode):
                return node.value
        raise self.errorf(f"can't handle {node.go_string()} for arg of type {GoFunc.go_param(param)}")


def _python_error(exc: BaseException) -> str:
    if isinstance(exc, ZeroDivisionError):
        return "runtime error: integer divide by zero"
    return str(exc)


def execute(trees: dict[str, n.Tree], funcs: dict[str, GoFunc], name: str, data: Any = MISSING) -> str:
    """Run template `name` with `data` as dot (MISSING = Go's nil data) and return the output."""
    tree = trees.get(name)
    if tree is None:
        raise TemplateExecError(f'template: no template "{name}" associated with template "{name}"')
    state = State(trees, funcs, tree)
    state.push("$", data)
    try:
        state.walk(data, tree.root)
    except RecursionError:
        raise state.errorf(f"exceeded maximum template depth ({MAX_DEPTH})") from None
    return "".join(state.out)

