#!/usr/bin/python3
"""run_cases.py - drive `airpack check` over the compliant manifest and one
failing variant per shipped rule (tests/policy/cases.json).

usage: run_cases.py AIRPACK SRC WORKDIR [--sarif]
WORKDIR holds demo/ (made by tests/gen/mkdemo). For each case the manifest
is rewritten from compliant.yaml with the case's "set" paths (null deletes
a key), the case's sums file is corrupted when it has "corrupt_sums", and
`airpack check --policy PACK` must report the rule: exit 1 for an error
rule (0 for a warning rule), the finding located at a line of the
manifest, and with --sarif a SARIF log that names the rule with its level.
Prints each failure and exits 1 when any case fails.
"""
import json
import os
import re
import subprocess
import sys

import yaml

airpack, src, work = sys.argv[1:4]
sarif = '--sarif' in sys.argv[4:]
validator = None
if sarif:
    import jsonschema
    schema = json.load(open(os.path.join(src, 'tests', 'schemas', 'sarif-schema-2.1.0.json')))
    validator = jsonschema.Draft7Validator(schema)
cases = json.load(open(os.path.join(src, 'tests/policy/cases.json')))
base = yaml.safe_load(open(os.path.join(src, 'tests/policy/compliant.yaml')))
failures = []


def set_path(doc, path, value):
    parts = re.findall(r'[^.\[\]]+|\[\d+\]', path)
    cur = doc
    for i, p in enumerate(parts):
        last = i == len(parts) - 1
        key = int(p[1:-1]) if p.startswith('[') else p
        if last:
            if value is None:
                del cur[key]
            else:
                cur[key] = value
        else:
            cur = cur[key]


def check(manifest, pack, fmt):
    r = subprocess.run([airpack, 'check', manifest, '--policy',
                        os.path.join(src, 'policies', pack + '.yaml'), '--format', fmt],
                       capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


# the compliant manifest passes every pack, with no error or warning from them
m = os.path.join(work, 'compliant.yaml')
with open(m, 'w') as f:
    yaml.safe_dump(base, f, sort_keys=False)
packs = sorted({c['pack'] for c in cases})
for pack in packs:
    rc, out, err = check(m, pack, 'json')
    if rc != 0:
        failures.append('compliant manifest fails pack %s: rc %d %s' % (pack, rc, err))
        continue
    doc = json.loads(out)
    bad = [f for f in doc['findings'] if f.get('pack') == pack and f['rule'] != 'BASE-VRAM-FIT']
    if bad:
        failures.append('compliant manifest: pack %s finds %s' % (pack, bad[0]['message']))
    if not any(p['name'] == pack for p in doc['policies']):
        failures.append('pack %s is not listed in the analysis' % pack)

levels = {}
for pack in packs:
    for r in yaml.safe_load(open(os.path.join(src, 'policies', pack + '.yaml')))['rules']:
        levels[r['id']] = r['severity']

for i, c in enumerate(cases):
    if c.get('cli') is False:
        continue
    rule, pack = c['rule'], c['pack']
    doc = json.loads(json.dumps(base))
    for k, v in c.get('set', {}).items():
        set_path(doc, k, v)
    m = os.path.join(work, 'case-%02d.yaml' % i)
    with open(m, 'w') as f:
        yaml.safe_dump(doc, f, sort_keys=False)
    saved = None
    if 'corrupt_sums' in c:
        sp = os.path.join(work, c['corrupt_sums'])
        saved = open(sp).read()
        with open(sp, 'w') as f:
            f.write('0' * 64 + saved[64:])
    try:
        rc, out, err = check(m, pack, 'json')
        want = 1 if levels[rule] == 'error' else 0
        if rc != want:
            failures.append('%s: exit %d, want %d: %s' % (rule, rc, want, err.strip()))
            continue
        found = [f for f in json.loads(out)['findings'] if f['rule'] == rule]
        if not found:
            failures.append('%s: no finding' % rule)
            continue
        f0 = found[0]
        if f0['level'] != levels[rule] or f0.get('pack') != pack or not f0.get('controls'):
            failures.append('%s: finding %r' % (rule, f0))
        if f0.get('location', {}).get('line', 0) < 1:
            failures.append('%s: finding without a line: %r' % (rule, f0))
        if sarif:
            rc, out, err = check(m, pack, 'sarif')
            log = json.loads(out)
            res = [r for r in log['runs'][0]['results'] if r['ruleId'] == rule]
            if rc != want or not res or res[0]['level'] != levels[rule]:
                failures.append('%s: SARIF result missing or wrong' % rule)
            elif res[0]['locations'][0]['physicalLocation']['region']['startLine'] < 1:
                failures.append('%s: SARIF result without a line' % rule)
            errs = list(validator.iter_errors(log))
            if errs:
                failures.append('%s: SARIF log does not validate: %s' % (rule, errs[0].message[:200]))
            rids = [r['id'] for r in log['runs'][0]['tool']['driver']['rules']]
            if rule not in rids:
                failures.append('%s: not among the SARIF rules' % rule)
            with open(os.path.join(work, 'case-%02d.sarif' % i), 'w') as f:
                f.write(out)
    finally:
        if saved is not None:
            with open(sp, 'w') as f:
                f.write(saved)

for f in failures:
    print('FAIL:', f)
sys.exit(1 if failures else 0)
