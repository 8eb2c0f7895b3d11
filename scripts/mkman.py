#!/usr/bin/env python3
"""mkman.py - airpack's man pages, generated from one source that stays true.

Each command page, airpack-CMD(1), is the command's own `--help` text (the
text the parser's command prints, so a page cannot drift from the CLI),
turned into Markdown and rendered by pandoc; docs/man/airpack-CMD.md, when
present, adds sections (EXAMPLES, FILES, ...). airpack(1) is `airpack
--help` plus docs/man/airpack.md; airpack-verify(1) is the static
verifier's own help. airpack-manifest(5) and airpack-policy(5) are
docs/manifest.md and docs/policies.md, the references the project keeps.

usage: mkman.py AIRPACK AIRPACK_VERIFY SRCDIR OUTDIR VERSION

The date on every page is SOURCE_DATE_EPOCH's (reproducible builds), else
the last commit's, else none.
"""
import datetime
import os
import re
import subprocess
import sys

OPT = re.compile(r'^ {1,8}(?:(-[A-Za-z0-9]), )?\s*(--[A-Za-z0-9][A-Za-z0-9-]*)'
                 r'((?:[ =](?:[A-Z][A-Z0-9_.|]*|\[[^\]]*\]))?)(?:\s+(.*))?$')
SECTION = re.compile(r'^([a-z][a-z /-]*[a-z]):(?:\s+(.*))?$')


def esc(s):
    """Escape Markdown specials so pandoc prints the text as written."""
    return re.sub(r'([\\`*_{}\[\]<>#|~^$@"])', r'\\\1', s)


def run(*argv):
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def page_date(srcdir):
    sde = os.environ.get('SOURCE_DATE_EPOCH')
    if sde:
        return datetime.datetime.fromtimestamp(int(sde), datetime.timezone.utc).strftime('%Y-%m-%d')
    try:
        return run('git', '-C', srcdir, 'log', '-1', '--format=%cs').strip()
    except (OSError, subprocess.CalledProcessError):
        return ''


def help_to_md(text):
    """Turn a usage text into Markdown sections: SYNOPSIS, DESCRIPTION,
    OPTIONS, EXIT STATUS and any other 'heading:' block it has."""
    lines = text.rstrip('\n').split('\n')
    out = []
    i = 0
    # SYNOPSIS: the usage line and its indented continuation lines
    syn = []
    while i < len(lines) and lines[i].strip():
        syn.append(re.sub(r'^usage:\s*', '', lines[i]).strip())
        i += 1
    out.append('# SYNOPSIS\n')
    for s in syn:
        out.append('| ' + esc(s))
    out.append('')
    section = 'DESCRIPTION'
    out.append('# DESCRIPTION\n')
    para = []

    def flush():
        if para:
            out.append(' '.join(para))
            out.append('')
            para.clear()

    while i < len(lines):
        line = lines[i]
        m = SECTION.match(line)
        if m and not line.startswith(' '):
            flush()
            section = m.group(1).upper()
            out.append('# ' + section + '\n')
            if m.group(2):
                para.append(esc(m.group(2)))
            i += 1
            continue
        om = OPT.match(line) if section == 'OPTIONS' or line.lstrip().startswith('-') else None
        if om and section == 'OPTIONS':
            flush()
            short, long_, arg, desc = om.groups()
            term = ('**\\%s**, ' % short if short else '') + '**\\%s**' % long_
            if arg:
                term += ' *%s*' % esc(arg.strip(' ='))
            body = [desc or '']
            indent = len(line) - len(line.lstrip())
            i += 1
            while i < len(lines) and lines[i].strip() and \
                    len(lines[i]) - len(lines[i].lstrip()) > indent + 2 and \
                    not OPT.match(lines[i]):
                body.append(lines[i].strip())
                i += 1
            out.append(term)
            out.append(':   ' + esc(' '.join(b for b in body if b)))
            out.append('')
            continue
        if not line.strip():
            flush()
            i += 1
            continue
        if line.startswith('  '):
            # an indented block inside prose: keep its layout
            flush()
            block = []
            while i < len(lines) and lines[i].startswith('  ') and \
                    not (section == 'OPTIONS' and OPT.match(lines[i])):
                block.append(lines[i])
                i += 1
            out.append('```')
            out.extend(block)
            out.append('```')
            out.append('')
            continue
        para.append(esc(line.strip()))
        i += 1
    flush()
    return '\n'.join(out)


def extra(srcdir, name):
    p = os.path.join(srcdir, 'docs', 'man', name + '.md')
    if os.path.exists(p):
        with open(p, encoding='utf-8') as f:
            return f.read()
    return ''


def render(md, title, section, version, date, outdir):
    head = '%% %s(%s) airpack %s | airpack manual\n%%\n%% %s\n\n' % (title.upper(), section, version, date)
    path = os.path.join(outdir, '%s.%s' % (title, section))
    tmp = path + '.tmp'
    subprocess.run(['pandoc', '--standalone', '--from', 'markdown-smart', '--to', 'man',
                    '--output', tmp], input=head + md, text=True, check=True)
    os.replace(tmp, path)
    return path


def see_also(names, self_name):
    refs = ['**%s**(%s)' % (n, s) for n, s in names if n != self_name]
    return '# SEE ALSO\n\n' + ', '.join(refs) + '\n'


def tables_to_lists(md):
    """Pipe tables are too wide for an 80-column terminal: each row becomes
    a definition (first cell the term, the other cells 'header: value')."""
    lines = md.split('\n')
    out = []
    i = 0

    def cells(ln):
        return [c.strip() for c in ln.strip().strip('|').split('|')]

    while i < len(lines):
        if lines[i].lstrip().startswith('|') and i + 1 < len(lines) and \
                re.match(r'^\s*\|?\s*:?-{3,}', lines[i + 1]):
            head = cells(lines[i])
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith('|'):
                row = cells(lines[i])
                term = row[0] if row and row[0] else '-'
                rest = ['%s: %s' % (head[k], row[k]) if k < len(head) and head[k] else row[k]
                        for k in range(1, len(row)) if row[k]]
                out.append(term)
                out.append(':   ' + ('; '.join(rest) if rest else '-'))
                out.append('')
                i += 1
            continue
        out.append(lines[i])
        i += 1
    return '\n'.join(out)


def strip_front(md):
    """docs/*.md start with '# Title': pages use their own headings."""
    lines = md.split('\n')
    if lines and lines[0].startswith('# '):
        lines = lines[1:]
    # demote: '## X' -> '# X' so pandoc makes .SH sections
    out = []
    for ln in lines:
        if ln.startswith('#'):
            m = re.match(r'^(#+)\s+(.*)$', ln)
            if m:
                level = max(1, len(m.group(1)) - 1)
                text = m.group(2).upper() if level == 1 else m.group(2)
                ln = '#' * level + ' ' + text
        out.append(ln)
    return '\n'.join(out)


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    airpack, verify, srcdir, outdir, version = sys.argv[1:]
    os.makedirs(outdir, exist_ok=True)
    date = page_date(srcdir)
    listing = run(airpack, 'help')
    cmds = []
    in_cmds = False
    for ln in listing.split('\n'):
        if ln.startswith('commands:'):
            in_cmds = True
            continue
        if in_cmds:
            m = re.match(r'^  ([a-z][a-z-]*)\s+(.*)$', ln)
            if not m:
                break
            cmds.append((m.group(1), m.group(2)))
    pages = [('airpack', 1)] + [('airpack-' + c, 1) for c, _ in cmds] + \
            [('airpack-verify', 1), ('airpack-manifest', 5), ('airpack-policy', 5)]
    # airpack-verify is both a command page and the static program's page;
    # the program's page wins (it lists the commands it carries).
    pages = list(dict.fromkeys(pages))
    written = []

    for c, summary in cmds:
        if c == 'verify':
            continue
        md = '# NAME\n\nairpack-%s - %s\n\n' % (c, esc(summary))
        md += help_to_md(run(airpack, c, '--help')) + '\n' + extra(srcdir, 'airpack-' + c)
        md += '\n' + see_also([('airpack', 1), ('airpack-manifest', 5)], '')
        written.append(render(md, 'airpack-' + c, 1, version, date, outdir))

    # airpack-verify(1): `airpack verify` and the static airpack-verify program
    vsum = dict(cmds).get('verify', 'check a bundle in one streaming pass')
    md = '# NAME\n\nairpack-verify - %s\n\n' % esc(vsum)
    md += help_to_md(run(airpack, 'verify', '--help'))
    md += '\n# THE STATIC VERIFIER\n\n'
    md += ('**airpack-verify** is a separate, statically linked program carrying only '
           'the commands a site needs inside the air gap; it is the one program a site '
           'has to trust first. Its commands:\n\n```\n')
    vl = run(verify, 'help')
    md += '\n'.join(ln for ln in vl.split('\n') if re.match(r'^  [a-z]', ln)) + '\n```\n\n'
    md += extra(srcdir, 'airpack-verify')
    md += '\n' + see_also([('airpack', 1), ('airpack-install', 1), ('airpack-audit', 1)], '')
    written.append(render(md, 'airpack-verify', 1, version, date, outdir))

    # airpack(1)
    top = run(airpack, '--help')
    md = '# NAME\n\nairpack - offline bundles for LLM inference stacks in air-gapped sites\n\n'
    md += '# SYNOPSIS\n\n| **airpack** *command* \\[*options*\\] \\[*arguments*\\]\n| **airpack help** \\[*command*\\]\n\n'
    listing_md = '# COMMANDS\n\n'
    for c, summary in cmds:
        listing_md += '**airpack-%s**(1)\n:   %s\n\n' % (c, esc(summary))
    # DESCRIPTION first (docs/man/airpack.md), then COMMANDS, then the rest
    more = extra(srcdir, 'airpack')
    cut = more.find('\n# ', 1) if more.startswith('# DESCRIPTION') else 0
    if cut < 0:
        cut = len(more)
    md += more[:cut] + '\n' + listing_md + more[cut:]
    md += '\n# EXIT STATUS\n\n0 success, 1 a check failed (policy error, VRAM does not fit, ' \
          'verification failed, hostile bundle), 2 bad usage or invalid input.\n\n'
    md += see_also([('airpack-' + c, 1) for c, _ in cmds] +
                   [('airpack-manifest', 5), ('airpack-policy', 5)], '')
    assert 'usage:' in top
    written.append(render(md, 'airpack', 1, version, date, outdir))

    # section 5: the references in docs/
    for name, doc, what in (('airpack-manifest', 'manifest.md', 'the airpack deployment manifest'),
                            ('airpack-policy', 'policies.md', 'airpack policy packs')):
        with open(os.path.join(srcdir, 'docs', doc), encoding='utf-8') as f:
            body = tables_to_lists(strip_front(f.read()))
        md = '# NAME\n\n%s - %s\n\n# DESCRIPTION\n' % (name, what) + body
        md += '\n' + see_also([('airpack', 1), ('airpack-check', 1)], '')
        written.append(render(md, name, 5, version, date, outdir))

    for w in written:
        print(w)


if __name__ == '__main__':
    main()
