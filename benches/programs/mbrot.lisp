;; mbrot — Mandelbrot iteration counts on a grid of floats (after r7rs-benchmarks "mbrot", whose
;; grid lives in vectors; here the counts are summed, and the corner count is the classic result).
(define (count r i step x y)
  (let ((max-count 64) (radius^2 16.0))
    (let ((cr (+ r (* (inexact x) step)))
          (ci (+ i (* (inexact y) step))))
      (let loop ((zr cr) (zi ci) (c 0))
        (if (= c max-count)
            c
            (let ((zr^2 (* zr zr)) (zi^2 (* zi zi)))
              (if (> (+ zr^2 zi^2) radius^2)
                  c
                  (loop (+ (- zr^2 zi^2) cr) (+ (* 2.0 (* zr zi)) ci) (+ c 1)))))))))
(define (mbrot r i step n)
  (let loop-y ((y (- n 1)) (total 0))
    (if (< y 0)
        total
        (loop-y (- y 1)
                (let loop-x ((x (- n 1)) (total total))
                  (if (< x 0) total (loop-x (- x 1) (+ total (count r i step x y)))))))))
(println (count -1.0 -0.5 0.005 0 0) (mbrot -1.0 -0.5 0.005 40))
; expect-output: 5 12100
