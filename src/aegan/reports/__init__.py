"""Reports: image grids, latent-space pictures and commands, the summary table, the HTML report."""
