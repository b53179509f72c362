"""Print the chart's template of the reporters' cluster-wide objects (ClusterRole,
ValidatingAdmissionPolicy and its binding), generated from kubetune.render.rbac."""

from __future__ import annotations

import sys

from kubetune.render.rbac import reporter_access_chart_template

if __name__ == "__main__":
    sys.stdout.write(reporter_access_chart_template())
