"""What a scan leaves behind: results.csv and its resume index, the details JSON and console line (writers), the HTML report."""
