# lme4's answers for three data sets, saved so that the tests can check
# fit_reml (and statsmodels' MixedLM) against lme4 where R is absent.
#
# Run from the repository root:
#   .venv/bin/python -c "from multilevel.data import simulate_cafes; \
#     simulate_cafes(seed=14).data.to_csv('tests/reference/cafes.csv', index=False)"
#   Rscript tests/reference/make_reference.R
#
# It writes sleepstudy.csv and dyestuff.csv (lme4's data sets) and, for each
# data set and for REML and ML, lme4_<data>.json (fixed effects, standard
# errors, Wald intervals, SDs and correlations, the criterion, theta, and for
# REML the likelihood-ratio profile intervals) and lme4_<data>_ranef_<method>.csv
# (conditional modes and their conditional SDs from condVar).

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

here <- "tests/reference"

write.csv(
  data.frame(Reaction = sleepstudy$Reaction, Days = sleepstudy$Days,
             Subject = as.integer(as.character(sleepstudy$Subject))),
  file.path(here, "sleepstudy.csv"), row.names = FALSE)
write.csv(
  data.frame(Yield = Dyestuff$Yield, Batch = as.character(Dyestuff$Batch)),
  file.path(here, "dyestuff.csv"), row.names = FALSE)

read <- function(name, group) {
  d <- read.csv(file.path(here, paste0(name, ".csv")))
  d[[group]] <- factor(d[[group]])  # levels sorted as R sorts them
  d
}

cases <- list(
  sleepstudy = list(data = read("sleepstudy", "Subject"),
                    formula = Reaction ~ 1 + Days + (1 + Days | Subject)),
  dyestuff = list(data = read("dyestuff", "Batch"),
                  formula = Yield ~ 1 + (1 | Batch)),
  cafes = list(data = read("cafes", "cafe"),
               formula = wait ~ 1 + afternoon + (1 + afternoon | cafe))
)

varcorr <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  name <- ifelse(vc$grp == "Residual", "sigma",
          ifelse(is.na(vc$var2), paste0("sd_", vc$var1, "|", vc$grp),
                 paste0("cor_", vc$var2, ".", vc$var1, "|", vc$grp)))
  as.list(setNames(vc$sdcor, name))
}

interval_list <- function(ci) {
  lapply(setNames(seq_len(nrow(ci)), rownames(ci)),
         function(i) unname(ci[i, ]))
}

one_fit <- function(case, reml) {
  m <- lmer(case$formula, data = case$data, REML = reml)
  wald <- confint(m, method = "Wald", oldNames = FALSE)
  wald <- wald[names(fixef(m)), , drop = FALSE]
  out <- list(
    method = if (reml) "REML" else "ML",
    formula = paste(deparse(case$formula), collapse = " "),
    nobs = nobs(m),
    criterion = if (reml) REMLcrit(m) else deviance(m),
    theta = unname(getME(m, "theta")),
    fixed = as.list(fixef(m)),
    std_error = as.list(setNames(sqrt(diag(as.matrix(vcov(m)))), names(fixef(m)))),
    wald = interval_list(wald),
    varcorr = varcorr(m),
    singular = isSingular(m)
  )
  if (reml) {
    prof <- suppressMessages(confint(m, method = "profile", oldNames = FALSE))
    out$profile <- interval_list(prof[names(out$varcorr), , drop = FALSE])
  }
  re <- ranef(m, condVar = TRUE)
  group <- names(re)[1]
  modes <- re[[group]]
  post <- attr(modes, "postVar")
  rows <- do.call(rbind, lapply(seq_len(nrow(modes)), function(j) {
    data.frame(group = rownames(modes)[j], term = colnames(modes),
               estimate = unlist(modes[j, ]),
               std_error = sqrt(diag(matrix(post[, , j], ncol(modes)))))
  }))
  list(json = out, ranef = rows)
}

for (name in names(cases)) {
  fits <- lapply(c(REML = TRUE, ML = FALSE), function(r) one_fit(cases[[name]], r))
  meta <- list(R = R.version.string,
               lme4 = as.character(packageVersion("lme4")),
               REML = fits$REML$json, ML = fits$ML$json)
  write(toJSON(meta, auto_unbox = TRUE, digits = NA, pretty = TRUE),
        file.path(here, paste0("lme4_", name, ".json")))
  for (method in names(fits)) {
    write.csv(fits[[method]]$ranef,
              file.path(here, sprintf("lme4_%s_ranef_%s.csv", name, method)),
              row.names = FALSE)
  }
}
