# Prints the values table of charts/oddjob/README.md from the "# --" comments in values.yaml:
#   python3 hack/chart-values-table.py   (paste between the markers in the README)
import re
lines=open('charts/oddjob/values.yaml').read().split('\n')
path=[]
pending=None
rows=[]
for i,l in enumerate(lines):
    m=re.match(r'^(\s*)# -- (.*)$', l)
    if m:
        pending=m.group(2); continue
    if re.match(r'^\s*#', l) or not l.strip(): continue
    m=re.match(r'^(\s*)([A-Za-z0-9_]+):\s*(.*)$', l)
    if not m: continue
    ind=len(m.group(1)); key=m.group(2); val=m.group(3)
    while path and path[-1][0]>=ind: path.pop()
    full='.'.join([k for _,k in path]+[key])
    if pending is not None:
        if val=='':
            j=i+1; block=[]
            while j<len(lines) and lines[j].startswith(' '*(ind+1)):
                block.append(lines[j].strip()); j+=1
            val=', '.join(block) if block else '{}'
        rows.append((full,val,pending)); pending=None
    path.append((ind,key))
bar='\\|'
print('| Value | Default | What it does |')
print('| --- | --- | --- |')
for k,v,d in rows:
    print('| `%s` | `%s` | %s |' % (k, v.replace('|',bar), d.replace('|',bar)))
