"""Vendor-faithful fake servers on 127.0.0.1 (issue 17): Jira, Azure DevOps, GitLab, GitHub, Slack, Teams."""
