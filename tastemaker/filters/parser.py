"""Tokenizer and recursive-descent parser for Personalize filter expressions."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from tastemaker.data.schemas import Schema
from tastemaker.errors import InvalidInputException
from tastemaker.filters.ast import (
    DATASET_ALIASES,
    Action,
    And,
    Condition,
    CondNode,
    CurrentItemRef,
    Expression,
    FilterExpression,
    Literal,
    LiteralList,
    NumberLiteral,
    Op,
    Or,
    Placeholder,
    StringLiteral,
    Target,
    Value,
)

# Interactions fields a filter may name even when the schema lacks them (PutEvents always sends EVENT_TYPE).
_IMPLICIT_FIELDS = {"Interactions": ("EVENT_TYPE", "TIMESTAMP"), "Action_Interactions": ("EVENT_TYPE", "TIMESTAMP")}

MAX_EXPRESSION_LENGTH = 2500
MAX_NESTING = 32  # parenthesised condition groups; keeps recursion far from Python's limit

# Keywords, targets, dataset names and CurrentItem/CurrentUser are matched in any letter case; so are field
# names, resolved to the schema's spelling by `resolve_field_case` (Personalize accepts Interactions.event_type);
# parameter names and values are case-sensitive.
_TARGETS = {"itemid": Target.ITEM, "userid": Target.USER, "actionid": Target.ACTION}
_SYMBOL_OPS = {"=": Op.EQ, "!=": Op.NE, "<": Op.LT, "<=": Op.LE, ">": Op.GT, ">=": Op.GE}
_OPS_TEXT = "IN, NOT IN, =, !=, <, <=, > or >="
_DATASETS_TEXT = "a dataset name (Interactions, Items, Users, Actions or Action_Interactions)"

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?", re.ASCII)
_PARAM_NAME = re.compile(r"[A-Za-z0-9_]+")


@dataclass(frozen=True)
class Token:
    kind: str  # WORD NUMBER STRING PARAM OP LPAREN RPAREN COMMA PIPE DOT STAR EOF
    text: str  # source text
    value: str  # decoded value (string contents, parameter name, operator)
    pos: int  # 0-based offset


def syntax_error(pos: int, message: str) -> InvalidInputException:
    return InvalidInputException(f"Invalid filter expression at position {pos + 1}: {message}")


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch == '"':
            i = _read_string(text, i, tokens)
            continue
        if ch == "$":
            m = _PARAM_NAME.match(text, i + 1)
            if not m:
                raise syntax_error(i, "expected a parameter name after '$' (letters, digits or _)")
            tokens.append(Token("PARAM", text[i : m.end()], m.group(), i))
            i = m.end()
            continue
        m = _NUMBER.match(text, i)
        if m:
            tokens.append(Token("NUMBER", m.group(), m.group(), i))
            i = m.end()
            continue
        m = _WORD.match(text, i)
        if m:
            tokens.append(Token("WORD", m.group(), m.group(), i))
            i = m.end()
            continue
        two = text[i : i + 2]
        if two in ("!=", "<=", ">="):
            tokens.append(Token("OP", two, two, i))
            i += 2
            continue
        single = {"=": "OP", "<": "OP", ">": "OP", "(": "LPAREN", ")": "RPAREN", ",": "COMMA",
                  "|": "PIPE", ".": "DOT", "*": "STAR"}.get(ch)
        if single is None:
            raise syntax_error(i, f"unexpected character {ch!r}")
        tokens.append(Token(single, ch, ch, i))
        i += 1
    tokens.append(Token("EOF", "", "", n))
    return tokens


def _read_string(text: str, start: int, tokens: list[Token]) -> int:
    """Read a double-quoted string; `\\"` and `\\\\` are the only escapes."""
    out: list[str] = []
    i, n = start + 1, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n and text[i + 1] in '"\\':
            out.append(text[i + 1])
            i += 2
        elif ch == '"':
            tokens.append(Token("STRING", text[start : i + 1], "".join(out), start))
            return i + 1
        else:
            out.append(ch)
            i += 1
    raise syntax_error(start, "unterminated string: expected a closing '\"'")


def _describe(tok: Token) -> str:
    return "end of expression" if tok.kind == "EOF" else repr(tok.text)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    # ------------------------------------------------------------------ helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    @property
    def prev(self) -> Token:
        return self.tokens[self.i - 1]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def is_word(self, *words: str) -> bool:
        return self.tok.kind == "WORD" and self.tok.value.upper() in words

    def fail(self, expected: str, after: str | None = None) -> InvalidInputException:
        if after is None and self.i > 0:
            after = self.prev.text
        context = f" after {after!r}" if after else ""
        return syntax_error(self.tok.pos, f"expected {expected}{context}, found {_describe(self.tok)}")

    def expect(self, kind: str, expected: str, after: str | None = None) -> Token:
        if self.tok.kind != kind:
            raise self.fail(expected, after)
        return self.advance()

    # ------------------------------------------------------------------ grammar
    def parse(self) -> FilterExpression:
        expressions = [self.expression()]
        while self.tok.kind == "PIPE":
            self.advance()
            expressions.append(self.expression())
        return FilterExpression(tuple(expressions))

    def expression(self) -> Expression:
        start = self.tok.pos
        if not self.is_word("INCLUDE", "EXCLUDE"):
            raise self.fail("INCLUDE or EXCLUDE")
        action = Action(self.advance().value.upper())
        target = _TARGETS.get(self.tok.value.lower()) if self.tok.kind == "WORD" else None
        if target is None:
            raise self.fail("ItemID, UserID or ActionID")
        self.advance()
        if not self.is_word("WHERE"):
            raise self.fail("WHERE")
        self.advance()
        condition = self.or_expr()
        user_conditions: list[Condition] = []
        if self.is_word("IF"):
            self.advance()
            user_conditions.append(self.user_condition())
            while self.is_word("AND"):
                self.advance()
                user_conditions.append(self.user_condition())
            if self.is_word("OR"):
                raise syntax_error(self.tok.pos, "only AND can join the conditions of an IF clause, found 'OR'")
            if self.tok.kind not in ("PIPE", "EOF"):
                raise self.fail("AND, | or end of expression")
        elif self.tok.kind not in ("PIPE", "EOF"):
            raise self.fail("AND, OR, IF, | or end of expression")
        return Expression(action, target, condition, tuple(user_conditions), position=start + 1)

    def or_expr(self) -> CondNode:
        children = [self.and_expr()]
        while self.is_word("OR"):
            self.advance()
            children.append(self.and_expr())
        return _join(Or, children)

    def and_expr(self) -> CondNode:
        children = [self.primary()]
        while self.is_word("AND"):
            self.advance()
            children.append(self.primary())
        return _join(And, children)

    def primary(self) -> CondNode:
        if self.tok.kind != "LPAREN":
            return self.condition()
        if self.depth >= MAX_NESTING:
            raise syntax_error(self.tok.pos, f"parentheses are nested more than {MAX_NESTING} deep")
        self.advance()
        self.depth += 1
        node = self.or_expr()
        self.depth -= 1
        self.expect("RPAREN", "AND, OR or ')'")
        return node

    def condition(self) -> Condition:
        tok = self.tok
        dataset = DATASET_ALIASES.get(tok.value.lower()) if tok.kind == "WORD" else None
        if dataset is None:
            if tok.kind == "WORD" and tok.value.lower() in ("currentuser", "currentitem"):
                raise syntax_error(tok.pos, f"{tok.text} cannot start a WHERE condition; expected {_DATASETS_TEXT}")
            raise self.fail(f"{_DATASETS_TEXT} or '('")
        self.advance()
        return self.condition_rest(dataset, tok.pos)

    def user_condition(self) -> Condition:
        tok = self.tok
        if not self.is_word("CURRENTUSER"):
            raise self.fail("CurrentUser.FIELD")
        self.advance()
        return self.condition_rest("CurrentUser", tok.pos)

    def condition_rest(self, dataset: str, pos: int) -> Condition:
        self.expect("DOT", "'.'")
        field = self.expect("WORD", "a field name").value
        op = self.operator(after=f"{dataset}.{field}")
        value = self.value(op)
        return Condition(dataset, field, op, value, position=pos + 1)

    def operator(self, after: str) -> Op:
        tok = self.tok
        if tok.kind == "OP":
            self.advance()
            return _SYMBOL_OPS[tok.value]
        if self.is_word("IN"):
            self.advance()
            return Op.IN
        if self.is_word("NOT"):
            self.advance()
            if not self.is_word("IN"):
                raise self.fail("IN")
            self.advance()
            return Op.NOT_IN
        raise self.fail(_OPS_TEXT, after)

    def value(self, op: Op) -> Value:
        after = op.value
        if self.tok.kind == "PARAM":
            return Placeholder(self.advance().value)
        if self.is_word("CURRENTITEM"):
            return self.current_item()
        if self.tok.kind != "LPAREN":
            if op.is_list_op:
                raise self.fail("'(', a $PARAMETER or CurrentItem.FIELD", after)
            if self.tok.kind in ("STRING", "NUMBER", "STAR"):
                return LiteralList((self.literal(),))
            raise self.fail('a value (a number, a "string", a $PARAMETER or CurrentItem.FIELD)', after)
        self.advance()
        if self.tok.kind == "PARAM":
            value: Value = Placeholder(self.advance().value)
            self.close_single("a placeholder must be the only value inside its parentheses")
            return value
        if self.is_word("CURRENTITEM"):
            value = self.current_item()
            self.close_single("CurrentItem.FIELD must be the only value inside its parentheses")
            return value
        if self.tok.kind not in ("STRING", "NUMBER", "STAR"):
            raise self.fail('a value (a number, a "string" or a $PARAMETER)')
        items = [self.literal()]
        while self.tok.kind == "COMMA":
            if not op.is_list_op:
                raise syntax_error(self.tok.pos, f"expected ')': {op.value} compares with a single value")
            self.advance()
            if self.tok.kind not in ("STRING", "NUMBER", "STAR"):
                raise self.fail('a value (a number or a "string"; placeholders cannot be mixed with values)')
            items.append(self.literal())
        self.expect("RPAREN", "',' or ')'" if op.is_list_op else "')'")
        return LiteralList(tuple(items))

    def close_single(self, comma_message: str) -> None:
        if self.tok.kind == "COMMA":
            raise syntax_error(self.tok.pos, f"expected ')': {comma_message}")
        self.expect("RPAREN", "')'")

    def current_item(self) -> CurrentItemRef:
        self.advance()
        self.expect("DOT", "'.'")
        return CurrentItemRef(self.expect("WORD", "a field name").value)

    def literal(self) -> Literal:
        tok = self.advance()
        if tok.kind == "NUMBER":
            return NumberLiteral(tok.text)
        return StringLiteral("*" if tok.kind == "STAR" else tok.value)


def _join(kind: type[And | Or], children: list[CondNode]) -> CondNode:
    """Build an n-ary node, flattening nested nodes of the same kind (so the tree is canonical)."""
    if len(children) == 1:
        return children[0]
    flat: list[CondNode] = []
    for child in children:
        flat.extend(child.children if isinstance(child, kind) else (child,))
    return kind(tuple(flat))


def parse_filter(expression: str) -> FilterExpression:
    """Parse filter text into a tree; raise InvalidInputException naming the position on any error."""
    if not isinstance(expression, str):
        raise InvalidInputException("Invalid filter expression: expected a string")
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise syntax_error(
            MAX_EXPRESSION_LENGTH,
            f"a filter expression can have at most {MAX_EXPRESSION_LENGTH} characters; "
            f"this one has {len(expression)}",
        )
    parser = _Parser(expression)
    tree = parser.parse()
    if parser.tok.kind != "EOF":  # pragma: no cover - expression() already rejects trailing tokens
        raise parser.fail("| or end of expression")
    return tree


def resolve_field_case(expr: FilterExpression, schemas: Mapping[str, Schema]) -> FilterExpression:
    """`expr` with every field name spelt as its dataset's schema spells it, matched without regard to case
    (`Interactions.event_type` -> `Interactions.EVENT_TYPE`), as Personalize matches them. `schemas` are keyed
    by dataset type in any case; names with no match stay as written, for the checker to refuse."""
    names: dict[str, dict[str, str]] = {}
    for key, schema in schemas.items():
        dataset = DATASET_ALIASES.get(key.lower())
        if dataset is not None:
            spelled = {name.lower(): name for name in _IMPLICIT_FIELDS.get(dataset, ())}
            spelled.update({name.lower(): name for name in schema.field_names})
            names[dataset] = spelled
    owner = {"CurrentUser": "Users"}

    def spell(dataset: str, field: str) -> str:
        return names.get(owner.get(dataset, dataset), {}).get(field.lower(), field)

    def condition(cond: Condition) -> Condition:
        value = cond.value
        if isinstance(value, CurrentItemRef):
            value = CurrentItemRef(spell("Items", value.field))
        return replace(cond, field=spell(cond.dataset, cond.field), value=value)

    def node(n: CondNode) -> CondNode:
        if isinstance(n, Condition):
            return condition(n)
        return type(n)(tuple(node(child) for child in n.children))

    return FilterExpression(tuple(
        replace(e, condition=node(e.condition), user_conditions=tuple(condition(c) for c in e.user_conditions))
        for e in expr.expressions))
