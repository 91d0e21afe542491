#!/usr/bin/env python3
"""tests/lint/json_pack_check.py -- every json_pack() call in core/ passes as many
arguments as its format string asks for.  The compiler cannot check these
varargs; a mismatch reads a char* as a json_t* (this found a real crash).
Prints "N passed, N failed"; exits 1 on any mismatch."""
import os, re, sys, glob
def split_args(s):
    args, depth, cur, i, instr = [], 0, '', 0, False
    while i < len(s):
        c = s[i]
        if instr:
            cur += c
            if c == '\\': cur += s[i+1]; i += 1
            elif c == '"': instr = False
        elif c == '"': instr = True; cur += c
        elif c in '([{': depth += 1; cur += c
        elif c in ')]}':
            if depth == 0: args.append(cur.strip()); return args, i
            depth -= 1; cur += c
        elif c == ',' and depth == 0: args.append(cur.strip()); cur = ''
        else: cur += c
        i += 1
    return args, i
def slots(fmt):
    n = 0; i = 0
    while i < len(fmt):
        c = fmt[i]
        if c in 'sIibfoO':
            n += 1
            if c == 's' and i+1 < len(fmt) and fmt[i+1] in '#%': n += 1; i += 1
        i += 1
    return n
bad = 0
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')
calls = 0
for f in glob.glob(os.path.join(root, 'core', '**', '*.c'), recursive=True):
    src = open(f).read()
    for m in re.finditer(r'json_pack\(', src):
        args, _ = split_args(src[m.end():])
        fmt = ''.join(re.findall(r'"((?:[^"\\]|\\.)*)"', args[0]))
        calls += 1
        need = slots(fmt); have = len(args) - 1
        if need != have:
            line = src[:m.start()].count('\n') + 1
            print(f"{f}:{line}: format needs {need} args, got {have}: {fmt}"); bad += 1
print(f"{calls - bad} passed, {bad} failed")
sys.exit(1 if bad else 0)
